// qsec exhibition screen: shared state, language, live link, freshness badge and view rotation.
// replay.js adds the replay; views (live.js, map.js, …) register with QSEC.view(name, handlers);
// start.js starts the screen.
// No dependencies, nothing loaded from outside the server.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("qsec-config").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MINUTE = 60000;
  const RETRY_MS = 3000;
  const HEALTH_MS = 5000;
  const TRACK_STEP_MS = 4000; // a live position is kept at most this often per kit

  const Q = { config, views: new Map(), handlers: new Map(), kits: new Map(), MINUTE };
  const state = {
    lang: config.lang,
    offsetMs: 0, // server clock minus browser clock
    link: "connecting", // connecting | open | down
    connected: null, // ingest connected to the broker (null: unknown or no ingest here)
    lastLiveAt: null, // server-clock ms of the newest live reading
    startedAt: Date.now(),
    mode: "live", // live | replay
    replay: null, // {day, source, start, events, next, shift, timer}
    current: 0, // index of the view shown
    holdUntil: 0, // rotation paused until then (a visitor is using the screen)
  };
  Q.state = state;
  window.QSEC = Q;

  // ---------- helpers ----------
  Q.byId = (id) => document.getElementById(id);
  Q.serverNow = () => Date.now() + state.offsetMs;
  Q.label = (key, vars) => {
    let text = config.labels[state.lang][key];
    if (text === undefined) text = key;
    for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, value);
    return text;
  };
  Q.el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  Q.svg = (tag, attrs) => {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  };
  Q.locale = () => Q.label("decimal_locale");
  // CSS pixels per --u (kiosk.css: 1 on a 1920×1080 screen): views that draw to scale measure with it.
  let probe = null;
  Q.u = () => {
    if (!probe) {
      probe = Q.el("div", "u-probe");
      probe.setAttribute("aria-hidden", "true");
      document.body.append(probe);
    }
    return probe.getBoundingClientRect().width / 1000 || 1;
  };
  Q.quantityName = (q) => {
    const meta = config.quantities[q];
    const name = state.lang === "fr" ? meta.long_name_fr : meta.long_name;
    return name.charAt(0).toUpperCase() + name.slice(1);
  };
  // Shrink a line of text that does not fit its box, down to ``floor`` of its size (then the CSS
  // ellipsis, if any, cuts it).
  Q.fitText = (node, floor = 0.75) => {
    node.style.fontSize = "";
    if (!node.clientWidth || node.scrollWidth <= node.clientWidth) return;
    const size = parseFloat(window.getComputedStyle(node).fontSize);
    node.style.fontSize = `${Math.max(floor, (node.clientWidth - 1) / node.scrollWidth) * size}px`;
  };
  const formatters = new Map();
  Q.number = (value, decimals) => {
    const key = `${Q.locale()}:${decimals}`;
    if (!formatters.has(key)) {
      formatters.set(key, new Intl.NumberFormat(Q.locale(), { minimumFractionDigits: decimals, maximumFractionDigits: decimals }));
    }
    return formatters.get(key).format(value);
  };
  Q.format = (value, q) => Q.number(value, config.quantities[q].decimals);
  // A number and its unit, never parted: narrow no-break space in French, no-break space in English.
  Q.withUnit = (text, unit) => `${text}${state.lang === "fr" ? "\u202f" : "\u00a0"}${unit}`;
  Q.ago = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    let text;
    if (s < 60) text = Q.withUnit(s, "s");
    else if (s < 3600) text = Q.withUnit(Math.floor(s / 60), "min");
    else if (s < 86400) text = Q.withUnit(Math.floor(s / 3600), "h");
    else text = Q.withUnit(Math.floor(s / 86400), Q.label("day"));
    return Q.label("ago", { n: text });
  };
  Q.time = (ms) => new Date(ms).toLocaleTimeString(Q.locale(), { hour: "2-digit", minute: "2-digit" });
  Q.date = (value) => new Date(value).toLocaleDateString(Q.locale(), { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
  Q.bands = (q) => config.index.bands[q] || null;
  Q.band = (q, value) => {
    const bands = Q.bands(q);
    if (!bands || typeof value !== "number" || !Number.isFinite(value)) return null;
    for (const band of bands) if (band.upper === null || value <= band.upper) return band;
    return bands[bands.length - 1];
  };
  Q.bandName = (band) => (state.lang === "fr" ? band.label_fr : band.label_en);
  Q.paint = (node, band) => {
    node.style.backgroundColor = band ? band.colour : "";
    node.style.color = band ? band.ink : "";
    if (band) node.dataset.band = band.key;
    else delete node.dataset.band;
  };
  Q.on = (event, fn) => {
    if (!Q.handlers.has(event)) Q.handlers.set(event, []);
    Q.handlers.get(event).push(fn);
  };
  Q.emit = (event, ...args) => {
    for (const fn of Q.handlers.get(event) || []) {
      try {
        fn(...args);
      } catch (error) {
        console.warn(`qsec: a ${event} handler failed`, error); // one broken view must not stop the others
      }
    }
  };
  Q.view = (name, handlers) => Q.views.set(name, handlers);

  // A view drawn from one JSON answer: loaded when shown, every minute while shown, and when the
  // screen goes to or from replay; redrawn when the language (or another of ``events``) changes.
  Q.dataView = (name, path, draw, events = []) => {
    let section = null;
    let data = null;
    const redraw = () => draw(section, data);
    async function load() {
      try {
        data = await Q.api(path, Q.dayParams());
      } catch (error) {
        data = null;
      }
      redraw();
    }
    Q.view(name, {
      init(node) {
        section = node;
        for (const event of ["lang", ...events]) Q.on(event, redraw);
        Q.on("mode", load);
        window.setInterval(() => {
          if (!section.hidden) load();
        }, 60000);
        load();
      },
      show: load,
    });
  };

  // Index bands of quantity q shaded behind a chart: y(value) maps a value to the chart, top its ceiling.
  Q.shadeBands = (node, q, top, y, x0, width, opacity) => {
    let lower = 0;
    for (const band of Q.bands(q) || []) {
      const upper = band.upper === null ? top : Math.min(band.upper, top);
      if (upper > lower) {
        node.append(Q.svg("rect", { x: x0, y: y(upper), width, height: y(lower) - y(upper), fill: band.colour, "fill-opacity": opacity }));
      }
      lower = band.upper === null ? top : band.upper;
      if (lower >= top) break;
    }
  };
  Q.api = async (path, params) => {
    const query = new URLSearchParams(params || {});
    if (config.campaign) query.set("campaign", config.campaign);
    const response = await fetch(`${config.base}api/${path}?${query}`, { cache: "no-store" });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  };
  Q.dayParams = () => (state.mode === "replay" && state.replay.source === "store" ? { day: state.replay.day } : {});

  // ---------- kits ----------
  Q.kit = (device, campaign) => {
    let kit = Q.kits.get(device);
    if (!kit) {
      kit = { device, campaign, values: {}, means: {}, series: [], track: [], minutes: new Map() };
      Q.kits.set(device, kit);
      Q.emit("kit", kit);
    }
    return kit;
  };
  Q.setValue = (kit, q, value, t) => {
    if (!(q in config.quantities) || typeof value !== "number" || !Number.isFinite(value)) return false;
    const old = kit.values[q];
    if (old && old.t > t) return false;
    kit.values[q] = { value, t };
    return true;
  };
  Q.addPoint = (kit, point) => {
    const track = kit.track;
    const last = track[track.length - 1];
    if (last && point.t - last.t < TRACK_STEP_MS) return false;
    track.push(point);
    const since = Q.serverNow() - config.track_minutes * MINUTE;
    let drop = 0;
    while (drop < track.length && track[drop].t < since) drop += 1;
    if (drop) track.splice(0, drop);
    return true;
  };
  function accumulate(kit, value, t) {
    const minute = Math.floor(t / MINUTE) * MINUTE;
    const slot = kit.minutes.get(minute) || { sum: 0, n: 0 };
    slot.sum += value;
    slot.n += 1;
    kit.minutes.set(minute, slot);
    for (const key of kit.minutes.keys()) if (key < minute - config.chart_minutes * MINUTE) kit.minutes.delete(key);
    kit.series = [...kit.minutes.entries()].filter(([m]) => m < minute).map(([m, s]) => ({ minute: m, mean: s.sum / s.n }));
  }

  // Apply one reading (live or replayed): values, track, chart; then tell the views.
  Q.apply = (event) => {
    if (config.campaign && event.campaign !== config.campaign) return;
    const kit = Q.kit(event.device, event.campaign);
    const changed = [];
    for (const [q, value] of Object.entries(event.values || {})) {
      if (Q.setValue(kit, q, value, event.t)) changed.push(q);
    }
    const v = event.values || {};
    if (typeof v.latitude === "number" && typeof v.longitude === "number") {
      const pm = kit.values.pm2_5 && event.t - kit.values.pm2_5.t < 10000 ? kit.values.pm2_5.value : null;
      if (Q.addPoint(kit, { t: event.t, lat: v.latitude, lon: v.longitude, pm })) Q.emit("point", kit);
    }
    if (state.mode === "replay" && typeof v[config.hero] === "number") accumulate(kit, v[config.hero], event.t);
    Q.emit("reading", kit, changed);
  };

  Q.resetKits = () => {
    Q.kits.clear();
    Q.emit("reset");
  };

  // ---------- live data ----------
  const LATEST_MAX_AGE_S = 6 * 3600; // kits silent for longer are not shown
  async function loadLatest() {
    const data = await Q.api("latest", { max_age_s: LATEST_MAX_AGE_S });
    state.offsetMs = Date.parse(data.server_time) - Date.now();
    if (state.mode !== "live") return;
    for (const entry of data.devices) {
      const kit = Q.kit(entry.device, entry.campaign);
      const changed = [];
      for (const [q, v] of Object.entries(entry.values)) {
        const t = Date.parse(v.time);
        if (Q.setValue(kit, q, v.value, t)) {
          changed.push(q);
          state.lastLiveAt = state.lastLiveAt === null ? t : Math.max(state.lastLiveAt, t);
        }
      }
      Q.emit("reading", kit, changed);
    }
  }
  async function loadMeans() {
    if (state.mode !== "live") return;
    const data = await Q.api("minute-means", { minutes: config.chart_minutes, q: config.hero });
    for (const series of data.series) {
      const kit = Q.kits.get(series.device);
      if (!kit) continue;
      kit.series = series.points.map((p) => ({ minute: Date.parse(p.minute), mean: p.mean }));
    }
    const means = await Q.api("screen/means", { index: config.index.name });
    for (const entry of means.kits) {
      const kit = Q.kits.get(entry.device);
      if (kit) kit.means = entry.values;
    }
    if (state.mode === "live") Q.emit("means");
  }
  async function loadTrack() {
    if (state.mode !== "live" || !config.views.includes("map")) return;
    const data = await Q.api("screen/track", { minutes: config.track_minutes });
    for (const entry of data.kits) {
      const kit = Q.kit(entry.device, config.campaign || "");
      const r = entry.route;
      kit.track = r.t.map((t, i) => ({ t, lat: r.lat[i], lon: r.lon[i], pm: r.pm2_5[i] }));
    }
    Q.emit("tracks");
  }
  Q.reload = async () => {
    try {
      await loadLatest();
      await loadTrack();
      await loadMeans();
    } catch (error) {
      window.setTimeout(Q.reload, RETRY_MS);
    }
  };

  function connect() {
    const url = `${config.base}api/live${config.campaign ? `?campaign=${encodeURIComponent(config.campaign)}` : ""}`;
    const source = new EventSource(url);
    source.addEventListener("reading", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return; // a malformed message is skipped; the next one is applied
      }
      state.lastLiveAt = Q.serverNow();
      if (state.mode === "replay") Q.stopReplay();
      Q.apply(event);
      renderStatus();
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
      Q.reload(); // fill what was missed while the link was down
    });
    source.addEventListener("error", () => {
      state.link = source.readyState === EventSource.OPEN ? "open" : "down";
      renderStatus();
      if (source.readyState === EventSource.CLOSED) window.setTimeout(connect, RETRY_MS);
    });
  }

  async function pollHealth() {
    try {
      const data = await Q.api("health");
      state.connected = data.connected;
    } catch (error) {
      state.connected = null; // the link badge shows a lost server
    }
    renderStatus();
  }

  // ---------- status, clock, language, rotation ----------
  function renderStatus() {
    const badge = Q.byId("status");
    let status;
    if (state.mode === "replay") status = "replay";
    else if (state.link === "down") status = "offline";
    else if (state.link === "connecting") status = "connecting";
    else if (state.connected === false) status = "ingest_down";
    else {
      const fresh = state.lastLiveAt !== null && Q.serverNow() - state.lastLiveAt <= config.stale_after * 1000;
      status = fresh ? "live" : "stale";
    }
    badge.className = `status status-${status}`;
    badge.dataset.status = status;
    badge.textContent = Q.label(status);
    const banner = Q.byId("replay-banner");
    banner.hidden = state.mode !== "replay";
    if (state.mode === "replay") {
      banner.textContent = Q.label(state.replay.source === "store" ? "replay_banner" : "replay_banner_demo", { date: Q.date(state.replay.day) });
    }
  }
  Q.renderStatus = renderStatus;

  function renderClock() {
    Q.byId("clock").textContent = new Date(Q.serverNow()).toLocaleTimeString(Q.locale(), {
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function renderLegend() {
    const legend = Q.byId("legend");
    legend.replaceChildren();
    let lower = 0;
    for (const band of Q.bands(config.hero) || []) {
      const range = band.upper === null ? `>\u00a0${lower}` : `${lower}–${band.upper}`;
      const item = Q.el("li", "", `${Q.bandName(band)} ${range}`);
      Q.paint(item, band);
      legend.append(item);
      lower = band.upper;
    }
    Q.byId("legend-title").textContent = Q.label("legend_title", {
      index: config.index.title[state.lang],
      quantity: Q.quantityName(config.hero),
      averaging: Q.label(`averaging_${config.index.averaging}`),
    });
  }

  Q.setLang = (lang) => {
    state.lang = lang;
    document.documentElement.lang = lang;
    const view = config.views[state.current];
    document.title = `${config.title} — ${Q.label(`view_${view}`)}`;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = Q.label(node.dataset.i18n);
    const next = config.languages[(config.languages.indexOf(lang) + 1) % config.languages.length];
    const button = Q.byId("lang-switch");
    button.textContent = config.labels[next].language_name;
    button.setAttribute("aria-label", Q.label("switch_label"));
    button.title = Q.label("switch_label");
    if (config.campaign) Q.byId("campaign").textContent = Q.label("campaign", { name: config.campaign });
    Q.byId("heading").textContent = Q.label(`view_${view}`);
    renderLegend();
    renderStatus();
    renderClock();
    Q.emit("lang");
  };
  function switchLanguage() {
    const next = config.languages[(config.languages.indexOf(state.lang) + 1) % config.languages.length];
    const params = new URLSearchParams(window.location.search);
    params.set("lang", next);
    window.history.replaceState(null, "", `${window.location.pathname}?${params}`);
    Q.setLang(next);
  }

  Q.show = (index) => {
    state.current = index;
    const name = config.views[index];
    for (const [i, view] of config.views.entries()) Q.byId(`view-${view}`).hidden = i !== index;
    for (const [i, dot] of [...document.querySelectorAll(".dots li")].entries()) dot.classList.toggle("on", i === index);
    document.body.dataset.view = name;
    Q.byId("heading").textContent = Q.label(`view_${name}`);
    document.title = `${config.title} — ${Q.label(`view_${name}`)}`;
    const handlers = Q.views.get(name);
    if (handlers && handlers.show) handlers.show();
  };
  Q.hold = (ms) => {
    state.holdUntil = Date.now() + ms;
  };

  Q.start = () => {
    for (const [name, handlers] of Q.views) {
      if (config.views.includes(name) && handlers.init) handlers.init(Q.byId(`view-${name}`));
    }
    Q.byId("lang-switch").addEventListener("click", switchLanguage);
    Q.setLang(state.lang);
    Q.show(0);
    Q.reload();
    connect();
    pollHealth();
    window.setInterval(pollHealth, HEALTH_MS);
    window.setInterval(() => {
      if (Q.checkReplay) Q.checkReplay();
      renderStatus();
      renderClock();
      Q.emit("tick");
    }, 1000);
    window.setInterval(() => {
      loadMeans().catch(() => {});
    }, config.means_refresh_s * 1000);
    if (config.rotate && config.views.length > 1) {
      window.setInterval(() => {
        if (Date.now() >= state.holdUntil) Q.show((state.current + 1) % config.views.length);
      }, config.rotate * 1000);
    }
    if (config.alternate && config.languages.length > 1) {
      window.setInterval(() => {
        if (Date.now() >= state.holdUntil) Q.setLang(config.languages[(config.languages.indexOf(state.lang) + 1) % config.languages.length]);
      }, config.alternate * 1000);
    }
  };
})();
