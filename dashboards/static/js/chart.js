// Chart view: the last hour of 1-minute means of the main quantity, one line per kit,
// index bands shaded behind, the WHO 24-hour guideline level dashed.  The drawing's units are the
// screen's --u, its size the box's: text keeps its shape on any screen, portrait or landscape.
"use strict";

(() => {
  const Q = window.QSEC;
  const { config } = Q;
  const PAD = { left: 90, right: 30, top: 20, bottom: 50 };
  // twelve lines told apart on the dark background (each at least 7:1 against it)
  const PALETTE = ["#ffffff", "#ffd166", "#7dd3fc", "#f0abfc", "#a3e635", "#fb923c", "#c4b5fd", "#5eead4",
    "#fda4af", "#fde047", "#93c5fd", "#d9f99d"];
  let section = null;

  function niceStep(top) {
    return [1, 2, 5, 10, 20, 25, 50, 100, 200, 500].find((s) => top / s <= 6) || 1000;
  }

  function render() {
    if (!section || section.hidden) return;
    const q = config.hero;
    const end = Math.floor(Q.serverNow() / Q.MINUTE) * Q.MINUTE;
    const start = end - config.chart_minutes * Q.MINUTE;
    const kits = [...Q.kits.values()].sort((a, b) => (a.device < b.device ? -1 : 1));
    const series = kits.map((kit) => kit.series.filter((p) => p.minute >= start && p.minute < end));
    const node = section.querySelector("svg.big-chart");
    const u = Q.u();
    const W = Math.max(400, Math.round(node.clientWidth / u));
    const H = Math.max(200, Math.round(node.clientHeight / u));
    node.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const guideline = config.who[q];
    const highest = Math.max(guideline ? guideline * 1.6 : 25, ...series.flat().map((p) => p.mean * 1.2));
    const step = niceStep(highest);
    const top = Math.ceil(highest / step) * step;
    const x = (t) => PAD.left + ((t - start) / (end - start)) * (W - PAD.left - PAD.right);
    const y = (v) => PAD.top + (1 - Math.min(v, top) / top) * (H - PAD.top - PAD.bottom);
    node.replaceChildren();
    Q.shadeBands(node, q, top, y, PAD.left, W - PAD.left - PAD.right, 0.2);
    for (let v = 0; v <= top; v += step) {
      node.append(Q.svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
      node.append(Object.assign(Q.svg("text", { x: PAD.left - 12, y: y(v) + 9, "text-anchor": "end", class: "tick" }), { textContent: String(v) }));
    }
    const every = W < 1000 ? 20 : 10; // [min] between time ticks: fewer on a narrow chart
    for (let t = Math.ceil(start / (every * Q.MINUTE)) * every * Q.MINUTE; t <= end; t += every * Q.MINUTE) {
      node.append(Object.assign(Q.svg("text", { x: x(t), y: H - 12, "text-anchor": "middle", class: "tick" }), { textContent: Q.time(t) }));
    }
    if (guideline) {
      node.append(Q.svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(guideline), y2: y(guideline), class: "guideline" }));
    }
    const legend = section.querySelector(".chart-legend");
    legend.replaceChildren();
    legend.classList.toggle("many", kits.length > 6);
    kits.forEach((kit, i) => {
      const colour = PALETTE[i % PALETTE.length];
      const points = series[i];
      if (points.length) {
        const coords = points.map((p) => `${x(p.minute + Q.MINUTE / 2).toFixed(1)},${y(p.mean).toFixed(1)}`).join(" ");
        node.append(Q.svg("polyline", { points: coords, class: "series", stroke: colour }));
      }
      const item = Q.el("li", "");
      const swatch = Q.el("span", "swatch");
      swatch.style.backgroundColor = colour;
      const last = points[points.length - 1];
      item.append(swatch, Q.el("span", "", `${kit.device} ${last ? Q.withUnit(Q.format(last.mean, q), config.quantities[q].unit) : "—"}`));
      legend.append(item);
    });
    node.append(Q.svg("path", { d: `M${PAD.left},${PAD.top}V${H - PAD.bottom}H${W - PAD.right}`, class: "axis" }));
    if (guideline) { // over the lines, so they never hide it
      node.append(Object.assign(Q.svg("text", { x: W - PAD.right - 8, y: y(guideline) - 10, "text-anchor": "end", class: "guideline-label" }), {
        textContent: Q.label("who_line", { v: Q.number(guideline, 0) }),
      }));
    }
    section.querySelector(".chart-title").textContent = Q.label("chart_big", { quantity: Q.quantityName(q), unit: config.quantities[q].unit });
    section.querySelector(".chart-none").hidden = series.some((s) => s.length);
  }

  Q.view("chart", {
    init(node) {
      section = node;
      for (const event of ["means", "lang", "reset"]) Q.on(event, render);
      window.addEventListener("resize", render);
      window.setInterval(render, 20000);
      Q.on("mode", render);
    },
    show: render,
  });
  // Replayed readings build the minutes as they come: redraw now and then.
  window.setInterval(() => {
    if (Q.state.mode === "replay") render();
  }, 5000);
})();
