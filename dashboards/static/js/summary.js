// Summary view: the campaign in a few large numbers.
"use strict";

(() => {
  const Q = window.QSEC;

  function figure(key, value) {
    const node = Q.el("div", "figure");
    node.dataset.key = key;
    node.append(Q.el("span", "figure-value", value), Q.el("span", "figure-label", Q.label(`summary_${key}`)));
    return node;
  }

  function render(section, data) {
    const grid = section.querySelector(".figures");
    const since = section.querySelector(".summary-since");
    if (!data || !data.first) { // nothing measured yet: say so, not six zeros
      grid.replaceChildren();
      since.textContent = data ? Q.label("summary_empty") : "";
      return;
    }
    grid.replaceChildren(
      figure("kits", Q.number(data.kits, 0)),
      figure("hours", Q.number(data.hours, data.hours < 10 ? 1 : 0)),
      figure("distance", Q.number(data.distance_km, data.distance_km < 10 ? 1 : 0)),
      figure("participants", Q.number(data.participants, 0)),
      figure("days", Q.number(data.days, 0)),
      figure("records", Q.number(data.records, 0)),
    );
    for (const value of grid.querySelectorAll(".figure-value")) Q.fitText(value, 0.4); // 1 234 567 records
    since.textContent = Q.label("summary_since", { date: Q.date(data.first) });
  }

  Q.dataView("summary", "screen/summary", render);
  window.addEventListener("resize", () => {
    for (const value of document.querySelectorAll(".figure-value")) Q.fitText(value, 0.4);
  });
})();
