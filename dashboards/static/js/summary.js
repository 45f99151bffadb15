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
    if (!data) {
      grid.replaceChildren();
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
    const since = data.first ? Q.label("summary_since", { date: Q.date(data.first) }) : Q.label("summary_empty");
    section.querySelector(".summary-since").textContent = since;
  }

  Q.dataView("summary", "screen/summary", render);
})();
