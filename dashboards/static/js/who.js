// WHO view: today's mean measured here against the WHO 2021 24-hour guideline, in plain words.
"use strict";

(() => {
  const Q = window.QSEC;

  function bar(name, value, guideline, top) {
    const row = Q.el("li", "who-row");
    row.append(Q.el("span", "who-name", name));
    const track = Q.el("span", "who-track");
    const fill = Q.el("span", "who-fill");
    fill.style.width = `${Math.min(100, (value / top) * 100)}%`;
    fill.classList.toggle("above", value > guideline);
    const mark = Q.el("span", "who-mark");
    mark.style.left = `${(guideline / top) * 100}%`;
    track.append(fill, mark);
    row.append(track, Q.el("span", "who-value", Q.withUnit(Q.format(value, "pm2_5"), "µg/m³")));
    return row;
  }

  function render(section, data) {
    const head = section.querySelector(".who-verdict");
    const detail = section.querySelector(".who-detail");
    const bars = section.querySelector(".who-bars");
    const pm10 = section.querySelector(".who-pm10");
    const note = section.querySelector(".who-note");
    bars.replaceChildren();
    bars.classList.remove("two");
    const today = !data || Q.state.mode !== "replay" || Q.state.replay.source !== "store";
    const when = today ? Q.label("today") : Q.label("on_day", { date: Q.date(data.day) });
    if (!data || data.overall.pm2_5 === null) {
      head.textContent = Q.label("who_none", { when });
      head.dataset.verdict = "none";
      detail.textContent = "";
      pm10.textContent = "";
      note.textContent = Q.label("who_note_general");
      return;
    }
    const g = data.guideline.pm2_5;
    const mean = data.overall.pm2_5;
    head.textContent = Q.label(data.verdict.pm2_5 === "above" ? "who_above" : "who_below", { when });
    head.dataset.verdict = data.verdict.pm2_5;
    detail.textContent = Q.label("who_detail", { v: Q.format(mean, "pm2_5"), g: Q.number(g, 0), times: Q.number(mean / g, 1) });
    const values = data.kits.map((k) => k.pm2_5).filter((v) => v !== null);
    const top = Math.max(g * 2, ...values.map((v) => v * 1.1));
    for (const kit of data.kits) if (kit.pm2_5 !== null) bars.append(bar(kit.device, kit.pm2_5, g, top));
    bars.append(bar(Q.label("all_kits"), mean, g, top));
    const legend = Q.el("li", "who-row who-legend");
    legend.append(Q.el("span", "who-name", ""), Q.el("span", "who-mark-label", Q.label("who_mark", { g: Q.number(g, 0) })));
    legend.style.setProperty("--at", String(g / top));
    bars.append(legend);
    // more than six kits: two columns, so the verdict and the note stay on screen
    const rows = bars.children.length;
    bars.classList.toggle("two", rows > 7);
    bars.style.setProperty("--half", String(Math.ceil(rows / 2)));
    if (data.overall.pm10 !== null) {
      pm10.textContent = Q.label(data.verdict.pm10 === "above" ? "who_pm10_above" : "who_pm10_below", {
        v: Q.format(data.overall.pm10, "pm10"), g: Q.number(data.guideline.pm10, 0),
      });
    } else {
      pm10.textContent = "";
    }
    note.textContent = Q.label("who_note", { hours: data.hours });
  }

  Q.dataView("who", "screen/who", render);
})();
