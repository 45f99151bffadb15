// Live view: one card per kit; the first quantity large and coloured by the index, the others as
// tiles, the GPS position, a 60-minute chart; every number with its age.
"use strict";

(() => {
  const Q = window.QSEC;
  const { config } = Q;
  const CHART_W = 600;
  const CHART_H = 150;
  // Size [--u] a card needs at --k = 1 in each density (its parts at their least height, measured,
  // plus room for the chart): all its parts; without the GPS position, the tiles' ages and means and
  // the chart's caption; only the name, the large number and the chart.
  const CARD_W = 580;
  const DENSITIES = [["full", 880], ["compact", 700], ["minimal", 510]];
  const ENOUGH_K = 0.7; // a density is kept while its cards are at least this scale
  const cards = new Map(); // device -> card
  let container = null;

  function valueBlock(card, q, className) {
    const block = Q.el("div", `${className} value-block`);
    block.dataset.q = q;
    const head = Q.el("div", "block-head");
    const name = Q.el("div", "label");
    const chip = Q.el("span", "chip now-chip");
    head.append(name);
    const value = Q.el("div", "value");
    const num = Q.el("span", "num", "—");
    value.append(num, Q.el("span", "unit", config.quantities[q].unit));
    const meta = Q.el("div", "meta");
    const ageLine = Q.el("span", "age-line");
    const age = Q.el("span", "age");
    ageLine.append(age, chip);
    const mean = Q.el("span", "mean");
    const meanText = Q.el("span", "mean-text");
    const meanChip = Q.el("span", "chip");
    mean.append(meanText, meanChip);
    meta.append(ageLine, mean);
    block.append(head, value, meta);
    card.blocks[q] = { block, name, chip, value, num, age, mean: meanText, meanChip, q };
    return block;
  }

  function makeCard(kit) {
    const card = { kit, blocks: {}, node: Q.el("section", "kit") };
    card.node.dataset.device = kit.device;
    const head = Q.el("div", "kit-head");
    card.name = Q.el("h2", "kit-name", kit.device);
    head.append(card.name);
    card.node.append(head, valueBlock(card, config.hero, "hero"));

    const chart = Q.el("figure", "chart");
    card.caption = Q.el("figcaption", "chart-caption");
    const box = Q.el("div", "chart-box");
    card.svg = Q.svg("svg", { viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: "none", "aria-hidden": "true" });
    card.top = Q.el("span", "chart-label top");
    card.left = Q.el("span", "chart-label left");
    card.right = Q.el("span", "chart-label right");
    card.empty = Q.el("div", "chart-empty");
    box.append(card.svg, card.top, card.left, card.right, card.empty);
    chart.append(card.caption, box, Q.el("div", "chart-foot"));

    const tiles = Q.el("div", "tiles");
    for (const q of config.tiles) tiles.append(valueBlock(card, q, "tile"));

    const position = Q.el("div", "position value-block");
    position.dataset.q = "position";
    const posHead = Q.el("div", "block-head");
    card.posName = Q.el("div", "label");
    card.posAge = Q.el("span", "age");
    posHead.append(card.posName, card.posAge);
    const row = Q.el("div", "position-row");
    card.coords = {};
    for (const q of ["latitude", "longitude"]) {
      const coord = Q.el("span", "coord");
      coord.dataset.q = q;
      const axis = Q.el("span", "axis");
      const num = Q.el("span", "num", "—");
      coord.append(axis, num, Q.el("span", "unit", "°"));
      row.append(coord);
      card.coords[q] = { axis, num };
    }
    position.append(posHead, row);
    card.position = position;
    card.node.append(chart, tiles, position);
    return card;
  }

  // The grid that gives n cards of height h [--u] the largest scale in a width × height box [--u].
  function bestGrid(n, h, width, height, gap) {
    let best = { cols: 1, rows: n, k: 0 };
    for (let cols = 1; cols <= n; cols += 1) {
      const rows = Math.ceil(n / cols);
      const k = Math.min(1, (width - (cols - 1) * gap) / cols / CARD_W, (height - (rows - 1) * gap) / rows / h);
      if (k > best.k + 1e-6) best = { cols, rows, k };
    }
    return best;
  }

  // Columns, scale and density from the room the grid has, so the cards fit whatever the screen
  // (landscape, portrait) and however many kits there are.
  function layout() {
    const n = cards.size;
    container.dataset.count = String(n);
    Q.byId("live-waiting").hidden = n > 0;
    if (!n || !container.clientWidth) return;
    const u = Q.u();
    const style = window.getComputedStyle(container);
    const width = (container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)) / u;
    const height = (container.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom)) / u;
    const gap = parseFloat(style.columnGap) / u;
    let chosen = null;
    for (const [density, h] of DENSITIES) {
      chosen = { density, ...bestGrid(n, h, width, height, gap) };
      if (chosen.k >= ENOUGH_K) break;
    }
    container.style.setProperty("--cols", String(chosen.cols));
    container.dataset.density = chosen.density;
    let k = chosen.k;
    for (let pass = 0; pass < 3; pass += 1) {
      container.style.setProperty("--k", k.toFixed(3));
      // text longer than the measure (a long band name wrapping): shrink until every card holds its parts
      const over = Math.max(...[...cards.values()].map((card) => card.node.scrollHeight / card.node.clientHeight));
      if (!(over > 1.005)) break;
      k = (k / over) * 0.99;
    }
  }

  function refit() {
    layout();
    for (const card of cards.values()) labelCard(card);
  }

  function addCard(kit) {
    const card = makeCard(kit);
    cards.set(kit.device, card);
    const after = [...cards.keys()].sort().find((name) => name > kit.device);
    container.insertBefore(card.node, after ? cards.get(after).node : null);
    // a new card narrows the others: lay out and fit every card's text again, not only the new one's
    refit();
    renderCard(card);
  }

  function labelCard(card) {
    Q.fitText(card.name);
    for (const block of Object.values(card.blocks)) {
      block.name.textContent = Q.quantityName(block.q);
      Q.fitText(block.name);
      Q.fitText(block.value, 0.5);
    }
    card.posName.textContent = Q.label("position");
    card.coords.latitude.axis.textContent = Q.label("lat");
    card.coords.longitude.axis.textContent = Q.label("lon");
    card.caption.textContent = Q.label("chart_card");
    card.left.textContent = Q.label("minus_60");
    card.right.textContent = Q.label("now");
    card.empty.textContent = Q.label("no_data");
  }

  function renderValue(card, q) {
    const block = card.blocks[q];
    const v = card.kit.values[q];
    if (block) {
      const text = v ? Q.format(v.value, q) : "—";
      const longer = text.length !== block.num.textContent.length;
      block.num.textContent = text;
      if (longer) Q.fitText(block.value, 0.5); // 9,0 -> 10,0: the number may no longer fit
      const band = v ? Q.band(q, v.value) : null;
      if (q === config.hero) Q.paint(block.block, band);
      else Q.paint(block.chip, band);
      block.chip.textContent = band ? Q.bandName(band) : "";
      block.chip.hidden = !band;
      return;
    }
    if (card.coords[q]) card.coords[q].num.textContent = v ? Q.format(v.value, q) : "—";
  }

  function renderMeans(card) {
    for (const block of Object.values(card.blocks)) {
      const mean = card.kit.means[block.q];
      const bands = Q.bands(block.q);
      const band = typeof mean === "number" && bands ? Q.band(block.q, mean) : null;
      block.meanChip.hidden = !band;
      block.meanChip.textContent = band ? Q.bandName(band) : "";
      Q.paint(block.meanChip, band);
      if (!bands) {
        block.mean.textContent = "";
        continue;
      }
      const text = typeof mean === "number" ? Q.format(mean, block.q) : "—";
      block.mean.textContent = Q.label(`mean_${config.index.averaging}`, { v: text });
    }
  }

  function renderAges(card) {
    const now = Q.serverNow();
    const set = (age, node, t) => {
      age.textContent = t === null ? Q.label("no_data") : Q.ago(now - t);
      node.classList.toggle("old", t === null || now - t > config.old_after_s * 1000);
    };
    for (const block of Object.values(card.blocks)) {
      const v = card.kit.values[block.q];
      set(block.age, block.block, v ? v.t : null);
      if (v && block.q === config.hero) block.age.textContent = `${Q.label("instantaneous")} · ${block.age.textContent}`;
    }
    const lat = card.kit.values.latitude;
    set(card.posAge, card.position, lat ? lat.t : null);
  }

  function niceCeil(value) {
    const step = value <= 50 ? 5 : value <= 200 ? 25 : 100;
    return Math.ceil(value / step) * step;
  }

  function renderChart(card) {
    const end = Math.floor(Q.serverNow() / Q.MINUTE) * Q.MINUTE;
    const start = end - config.chart_minutes * Q.MINUTE;
    const points = card.kit.series.filter((p) => p.minute >= start && p.minute < end);
    const node = card.svg;
    node.replaceChildren();
    const top = niceCeil(Math.max(25, ...points.map((p) => p.mean * 1.3)));
    const y = (v) => CHART_H - (Math.min(v, top) / top) * CHART_H;
    const x = (minute) => ((minute + Q.MINUTE / 2 - start) / (end - start)) * CHART_W;
    Q.shadeBands(node, config.hero, top, y, 0, CHART_W, 0.16);
    const segments = [];
    for (const p of points) {
      const last = segments[segments.length - 1];
      if (last && p.minute - last[last.length - 1].minute === Q.MINUTE) last.push(p);
      else segments.push([p]);
    }
    for (const segment of segments) {
      const coords = segment.map((p) => `${x(p.minute).toFixed(1)},${y(p.mean).toFixed(1)}`);
      const first = x(segment[0].minute).toFixed(1);
      const lastX = x(segment[segment.length - 1].minute).toFixed(1);
      node.append(Q.svg("polygon", { class: "area", points: `${first},${CHART_H} ${coords.join(" ")} ${lastX},${CHART_H}` }));
      node.append(Q.svg("polyline", { class: "trace", points: coords.join(" ") }));
    }
    if (points.length) {
      const p = points[points.length - 1];
      node.append(Q.svg("line", { class: "dot", x1: x(p.minute), y1: y(p.mean), x2: x(p.minute), y2: y(p.mean) }));
    }
    card.top.textContent = Q.withUnit(top, config.quantities[config.hero].unit);
    card.empty.hidden = points.length > 0;
  }

  function renderCard(card) {
    for (const q of Object.keys(config.quantities)) renderValue(card, q);
    renderMeans(card);
    renderAges(card);
    renderChart(card);
  }

  Q.view("live", {
    init(section) {
      container = section.querySelector(".kits");
      for (const kit of Q.kits.values()) addCard(kit);
      Q.on("kit", addCard);
      Q.on("reading", (kit, changed) => {
        const card = cards.get(kit.device);
        if (!card) return;
        for (const q of changed) renderValue(card, q);
        renderAges(card);
        if (Q.state.mode === "replay") renderChart(card);
      });
      Q.on("means", () => {
        for (const card of cards.values()) {
          renderMeans(card);
          renderChart(card);
        }
        layout(); // a mean's band name may have taken a second line
      });
      Q.on("tick", () => {
        for (const card of cards.values()) renderAges(card);
      });
      Q.on("lang", () => {
        for (const card of cards.values()) renderCard(card);
        refit(); // the other language's words are longer or shorter
      });
      Q.on("reset", () => {
        for (const card of cards.values()) card.node.remove();
        cards.clear();
        layout();
      });
      window.addEventListener("resize", refit);
      window.setInterval(() => {
        for (const card of cards.values()) renderChart(card);
      }, Q.MINUTE);
    },
    show: refit,
  });
})();
