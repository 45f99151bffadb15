// qsec live kiosk.  Loads the newest values (/api/latest) and the 1-minute
// means (/api/minute-means), then applies each reading pushed on the
// Server-Sent Events stream (/api/live) as it arrives.  No dependencies.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("qsec-config").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const CHART_W = 600;
  const CHART_H = 150;
  const MINUTE = 60000;
  const LATEST_MAX_AGE_S = 6 * 3600; // kits silent for longer are not shown
  const RETRY_MS = 3000;

  const state = {
    lang: config.lang,
    offsetMs: 0, // server clock minus browser clock
    lastReadingAt: null, // server-clock ms of the newest reading seen
    link: "connecting", // connecting | open | down
    kits: new Map(), // device -> kit
  };

  // ---------- helpers ----------
  const byId = (id) => document.getElementById(id);
  const serverNow = () => Date.now() + state.offsetMs;
  const label = (key) => config.labels[state.lang][key];
  const locale = () => label("decimal_locale");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function quantityName(q) {
    const meta = config.quantities[q];
    const name = state.lang === "fr" ? meta.long_name_fr : meta.long_name;
    return name.charAt(0).toUpperCase() + name.slice(1);
  }

  const formatters = new Map();
  function format(value, q) {
    const decimals = config.quantities[q].decimals;
    const key = `${locale()}:${decimals}`;
    if (!formatters.has(key)) {
      formatters.set(key, new Intl.NumberFormat(locale(), {
        minimumFractionDigits: decimals,
        maximumFractionDigits: decimals,
      }));
    }
    return formatters.get(key).format(value);
  }

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    let text;
    if (s < 60) text = `${s} s`;
    else if (s < 3600) text = `${Math.floor(s / 60)} min`;
    else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
    else text = `${Math.floor(s / 86400)} ${label("day")}`;
    return label("ago").replace("{n}", text);
  }

  function bandOf(value) {
    for (const band of config.bands) {
      if (band.upper === null || value <= band.upper) return band;
    }
    return config.bands[config.bands.length - 1];
  }

  // ---------- kits ----------
  function valueBlock(kit, q, className) {
    const block = el("div", `${className} value-block`);
    block.dataset.q = q;
    const name = el("div", "label");
    const value = el("div", "value");
    const num = el("span", "num", "—");
    const unit = el("span", "unit", config.quantities[q].unit);
    value.append(num, unit);
    const meta = el("div", "meta");
    const age = el("span", "age");
    const mean = el("span", "mean");
    meta.append(age, mean);
    block.append(name, value, meta);
    kit.blocks[q] = { block, name, num, age, mean, q };
    return block;
  }

  function makeKit(device, campaign) {
    const kit = { device, campaign, values: {}, means: {}, series: [], blocks: {} };
    const card = el("section", "kit");
    card.dataset.device = device;
    const head = el("div", "kit-head");
    head.append(el("h2", "kit-name", device));
    if (!config.campaign) head.append(el("span", "kit-campaign", campaign)); // else the header names it

    const hero = valueBlock(kit, config.hero, "hero");
    kit.band = el("div", "band");
    hero.append(kit.band);

    const chart = el("figure", "chart");
    kit.chartCaption = el("figcaption", "chart-caption");
    const box = el("div", "chart-box");
    kit.svg = svg("svg", { viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: "none", "aria-hidden": "true" });
    kit.chartTop = el("span", "chart-label top");
    kit.chartLeft = el("span", "chart-label left");
    kit.chartRight = el("span", "chart-label right");
    kit.chartEmpty = el("div", "chart-empty");
    box.append(kit.svg, kit.chartTop, kit.chartLeft, kit.chartRight, kit.chartEmpty);
    chart.append(kit.chartCaption, box, el("div", "chart-foot"));

    const tiles = el("div", "tiles");
    for (const q of config.tiles) tiles.append(valueBlock(kit, q, "tile"));

    const position = el("div", "position value-block");
    position.dataset.q = "position";
    const posName = el("div", "label");
    const row = el("div", "position-row");
    kit.coords = {};
    for (const q of config.position) {
      const coord = el("span", "coord");
      coord.dataset.q = q;
      const axis = el("span", "axis");
      const num = el("span", "num", "—");
      coord.append(axis, num, el("span", "unit", config.quantities[q].unit));
      row.append(coord);
      kit.coords[q] = { axis, num };
    }
    const posHead = el("div", "position-head");
    const posAge = el("span", "age");
    posHead.append(posName, posAge);
    position.append(posHead, row);
    kit.positionBlock = { block: position, name: posName, age: posAge };

    card.append(head, hero, chart, tiles, position);
    kit.card = card;
    return kit;
  }

  function ensureKit(device, campaign) {
    let kit = state.kits.get(device);
    if (kit) return kit;
    kit = makeKit(device, campaign);
    state.kits.set(device, kit);
    const container = byId("kits");
    const waiting = byId("waiting");
    if (waiting) waiting.hidden = true;
    const after = [...state.kits.keys()].sort().find((name) => name > device);
    container.insertBefore(kit.card, after ? state.kits.get(after).card : null);
    layout();
    for (const other of state.kits.values()) labelKit(other);
    renderKit(kit);
    return kit;
  }

  function layout() {
    const n = state.kits.size;
    const rows = n <= 4 ? 1 : n <= 8 ? 2 : 3;
    const cols = Math.max(1, Math.ceil(n / rows));
    const k = Math.min(1, 3.2 / cols, 1.05 / rows);
    const container = byId("kits");
    container.style.setProperty("--cols", String(cols));
    container.style.setProperty("--k", String(k));
    container.dataset.count = String(n);
  }

  function setValue(kit, q, value, t) {
    if (!(q in config.quantities) || typeof value !== "number" || !Number.isFinite(value)) return false;
    const old = kit.values[q];
    if (old && old.t > t) return false;
    kit.values[q] = { value, t };
    return true;
  }

  // ---------- rendering ----------
  function fitText(node) {
    // shrink a one-line label (down to 75 %) rather than cut it
    node.style.fontSize = "";
    if (!node.clientWidth || node.scrollWidth <= node.clientWidth) return;
    const size = parseFloat(window.getComputedStyle(node).fontSize);
    node.style.fontSize = `${Math.max(0.75, node.clientWidth / node.scrollWidth) * size}px`;
  }

  function labelKit(kit) {
    for (const block of Object.values(kit.blocks)) {
      block.name.textContent = quantityName(block.q);
      fitText(block.name);
    }
    kit.positionBlock.name.textContent = label("position");
    for (const q of config.position) kit.coords[q].axis.textContent = label(q === "latitude" ? "lat" : "lon");
    kit.chartCaption.textContent = label("chart");
    kit.chartLeft.textContent = label("minus_60");
    kit.chartRight.textContent = label("now");
    kit.chartEmpty.textContent = label("no_data");
  }

  function renderValue(kit, q) {
    const block = kit.blocks[q];
    const v = kit.values[q];
    if (block) {
      block.num.textContent = v ? format(v.value, q) : "—";
      if (q === config.hero) renderBand(kit);
      return;
    }
    if (kit.coords[q]) kit.coords[q].num.textContent = v ? format(v.value, q) : "—";
  }

  function renderBand(kit) {
    const v = kit.values[config.hero];
    const hero = kit.blocks[config.hero].block;
    if (!v) {
      hero.style.backgroundColor = "";
      hero.style.color = "";
      kit.band.textContent = "";
      return;
    }
    const band = bandOf(v.value);
    hero.style.backgroundColor = band.colour;
    hero.style.color = band.ink;
    hero.dataset.band = band.key;
    kit.band.textContent = state.lang === "fr" ? band.label_fr : band.label_en;
  }

  function renderMeans(kit) {
    const fresh = serverNow() - 3 * MINUTE;
    for (const block of Object.values(kit.blocks)) {
      const m = kit.means[block.q];
      const text = m && m.minute + MINUTE >= fresh ? format(m.mean, block.q) : "—";
      block.mean.textContent = label("mean_1min").replace("{v}", text);
    }
  }

  function renderAges(kit) {
    const now = serverNow();
    const set = (age, block, t) => {
      age.textContent = t === null ? label("no_data") : ago(now - t);
      block.classList.toggle("old", t === null || now - t > config.old_after_s * 1000);
    };
    for (const block of Object.values(kit.blocks)) {
      const v = kit.values[block.q];
      set(block.age, block.block, v ? v.t : null);
    }
    const times = config.position.map((q) => kit.values[q]).filter(Boolean).map((v) => v.t);
    set(kit.positionBlock.age, kit.positionBlock.block, times.length ? Math.max(...times) : null);
  }

  function niceCeil(value) {
    const step = value <= 50 ? 5 : value <= 200 ? 25 : 100;
    return Math.ceil(value / step) * step;
  }

  function renderChart(kit) {
    const end = Math.floor(serverNow() / MINUTE) * MINUTE;
    const start = end - config.chart_minutes * MINUTE;
    const points = kit.series.filter((p) => p.minute >= start && p.minute < end);
    const node = kit.svg;
    while (node.firstChild) node.removeChild(node.firstChild);
    const top = niceCeil(Math.max(25, ...points.map((p) => p.mean * 1.3))); // headroom for the scale label
    const y = (v) => CHART_H - (Math.min(v, top) / top) * CHART_H;
    const x = (minute) => ((minute + MINUTE / 2 - start) / (end - start)) * CHART_W;

    let lower = 0;
    for (const band of config.bands) {
      const upper = band.upper === null ? top : Math.min(band.upper, top);
      if (upper > lower) {
        node.append(svg("rect", {
          x: 0, y: y(upper), width: CHART_W, height: y(lower) - y(upper),
          fill: band.colour, "fill-opacity": 0.16,
        }));
      }
      lower = band.upper === null ? top : band.upper;
      if (lower >= top) break;
    }

    const segments = [];
    for (const p of points) {
      const last = segments[segments.length - 1];
      if (last && p.minute - last[last.length - 1].minute === MINUTE) last.push(p);
      else segments.push([p]);
    }
    for (const segment of segments) {
      const coords = segment.map((p) => `${x(p.minute).toFixed(1)},${y(p.mean).toFixed(1)}`);
      const first = x(segment[0].minute).toFixed(1);
      const lastX = x(segment[segment.length - 1].minute).toFixed(1);
      node.append(svg("polygon", { class: "area", points: `${first},${CHART_H} ${coords.join(" ")} ${lastX},${CHART_H}` }));
      node.append(svg("polyline", { class: "trace", points: coords.join(" ") }));
    }
    if (points.length) {
      const p = points[points.length - 1];
      node.append(svg("line", { class: "dot", x1: x(p.minute), y1: y(p.mean), x2: x(p.minute), y2: y(p.mean) }));
    }
    kit.chartTop.textContent = `${top} ${config.quantities[config.hero].unit}`;
    kit.chartEmpty.hidden = points.length > 0;
  }

  function renderKit(kit) {
    for (const q of Object.keys(config.quantities)) renderValue(kit, q);
    renderMeans(kit);
    renderAges(kit);
    renderChart(kit);
  }

  function renderStatus() {
    const badge = byId("status");
    let status = state.link;
    if (state.link === "open") {
      const fresh = state.lastReadingAt !== null && serverNow() - state.lastReadingAt <= config.stale_after_s * 1000;
      status = fresh ? "live" : "stale";
    } else if (state.link === "down") {
      status = "offline";
    }
    badge.className = `status status-${status}`;
    badge.dataset.status = status;
    badge.textContent = label(status);
  }

  function renderClock() {
    byId("clock").textContent = new Date(serverNow()).toLocaleTimeString(locale(), {
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function renderLegend() {
    const legend = byId("legend");
    legend.replaceChildren();
    let lower = 0;
    for (const band of config.bands) {
      const range = band.upper === null ? `> ${lower}` : `${lower}–${band.upper}`;
      const item = el("li", "", `${state.lang === "fr" ? band.label_fr : band.label_en} ${range}`);
      item.style.backgroundColor = band.colour;
      item.style.color = band.ink;
      legend.append(item);
      lower = band.upper;
    }
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = `${config.title} — ${label("heading")}`;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = label(node.dataset.i18n);
    const button = byId("lang-switch");
    button.textContent = label("switch_to");
    button.setAttribute("aria-label", label("switch_label"));
    button.title = label("switch_label");
    if (config.campaign) byId("campaign").textContent = `${label("campaign")} ${config.campaign}`;
    renderLegend();
    for (const kit of state.kits.values()) {
      labelKit(kit);
      renderKit(kit);
    }
    renderStatus();
    renderClock();
  }

  function switchLanguage() {
    state.lang = state.lang === "fr" ? "en" : "fr";
    const params = new URLSearchParams(window.location.search);
    params.set("lang", state.lang);
    window.history.replaceState(null, "", `${window.location.pathname}?${params}`);
    applyLanguage();
  }

  // ---------- data ----------
  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  async function loadLatest() {
    try {
      const data = await getJSON(`${config.api.latest}?max_age_s=${LATEST_MAX_AGE_S}`);
      state.offsetMs = Date.parse(data.server_time) - Date.now();
      for (const entry of data.devices) {
        const kit = ensureKit(entry.device, entry.campaign);
        for (const [q, v] of Object.entries(entry.values)) {
          const t = Date.parse(v.time);
          if (setValue(kit, q, v.value, t)) {
            state.lastReadingAt = state.lastReadingAt === null ? t : Math.max(state.lastReadingAt, t);
          }
        }
        renderKit(kit);
      }
      renderStatus();
    } catch (error) {
      window.setTimeout(loadLatest, RETRY_MS);
    }
  }

  async function loadMeans() {
    try {
      const data = await getJSON(`${config.api.means}?minutes=${config.chart_minutes}`);
      for (const series of data.series) {
        const kit = state.kits.get(series.device);
        if (!kit || !series.points.length) continue;
        const points = series.points.map((p) => ({ minute: Date.parse(p.minute), mean: p.mean }));
        kit.means[series.quantity] = points[points.length - 1];
        if (series.quantity === config.hero) kit.series = points;
      }
      for (const kit of state.kits.values()) {
        renderMeans(kit);
        renderChart(kit);
      }
    } catch (error) {
      // the next refresh tries again
    }
  }

  function applyReading(event) {
    if (config.campaign && event.campaign !== config.campaign) return;
    const kit = ensureKit(event.device, event.campaign);
    for (const [q, value] of Object.entries(event.values || {})) {
      if (setValue(kit, q, value, event.t)) renderValue(kit, q);
    }
    state.lastReadingAt = serverNow();
    renderAges(kit);
    renderStatus();
  }

  function connect() {
    const source = new EventSource(config.api.live);
    source.addEventListener("reading", (message) => {
      try {
        applyReading(JSON.parse(message.data));
      } catch (error) {
        // a malformed message is skipped; the next one is applied
      }
    });
    source.addEventListener("ping", (message) => {
      try {
        state.offsetMs = JSON.parse(message.data).server_time - Date.now();
      } catch (error) {
        // keep the previous offset
      }
    });
    source.addEventListener("open", () => {
      state.link = "open";
      renderStatus();
      loadLatest().then(loadMeans); // fill what was missed while the link was down
    });
    source.addEventListener("error", () => {
      state.link = source.readyState === EventSource.OPEN ? "open" : "down";
      renderStatus();
      if (source.readyState === EventSource.CLOSED) window.setTimeout(connect, RETRY_MS);
    });
  }

  // ---------- start ----------
  byId("lang-switch").addEventListener("click", switchLanguage);
  window.addEventListener("resize", () => {
    for (const kit of state.kits.values()) labelKit(kit);
  });
  applyLanguage();
  loadLatest().then(loadMeans);
  connect();
  window.setInterval(() => {
    for (const kit of state.kits.values()) renderAges(kit);
    renderStatus();
    renderClock();
  }, 1000);
  window.setInterval(loadMeans, config.means_refresh_s * 1000);
  window.setInterval(() => {
    for (const kit of state.kits.values()) renderChart(kit);
  }, MINUTE);
})();
