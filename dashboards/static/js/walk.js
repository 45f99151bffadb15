// "Your walk" view: a visitor back from a walk with a lent kit picks it (by kit and time, or its code),
// sees its trace, what they breathed and how it compares with the day's other walks, and scans a QR
// code to take the one-page summary away.  Unattended, it shows the newest walk.
"use strict";

(() => {
  const Q = window.QSEC;
  const IDLE_MS = 120000; // a visitor's choice stays this long, then the newest walk again
  let section = null;
  let list = null;
  let chosen = null; // code picked by a visitor
  let detail = null;

  async function loadList() {
    try {
      list = await Q.api("screen/walks", Q.dayParams());
    } catch (error) {
      list = null;
    }
    renderList();
    const code = chosen || (list && list.walks.length ? list.walks[0].code : null);
    if (code && (!detail || detail.walk.code !== code)) await loadDetail(code);
    if (!code) renderDetail();
  }

  function unknown(code) {
    const message = section.querySelector(".walk-error");
    message.textContent = Q.label("walk_unknown", { code });
    message.hidden = false;
  }

  async function loadDetail(code) {
    if (list && !list.walks.some((walk) => walk.code === code)) {
      unknown(code); // codes are the day's: no need to ask the server
      return;
    }
    try {
      detail = await Q.api(`screen/walks/${encodeURIComponent(code)}`, { ...Q.dayParams(), lang: Q.state.lang });
      section.querySelector(".walk-error").hidden = true;
    } catch (error) {
      detail = null;
      unknown(code);
    }
    renderDetail();
  }

  function pick(code) {
    chosen = code.toUpperCase();
    Q.hold(IDLE_MS);
    window.clearTimeout(pick.timer);
    pick.timer = window.setTimeout(() => {
      chosen = null;
      loadList();
    }, IDLE_MS);
    loadDetail(chosen);
  }

  function renderList() {
    const items = section.querySelector(".walk-items");
    items.replaceChildren();
    const walks = list ? list.walks.slice(0, 8) : [];
    for (const walk of walks) {
      const button = Q.el("button", "walk-item");
      button.type = "button";
      button.dataset.code = walk.code;
      button.classList.toggle("on", detail !== null && detail.walk.code === walk.code);
      button.append(
        Q.el("span", "walk-item-kit", walk.device),
        Q.el("span", "walk-item-time", `${Q.time(Date.parse(walk.start))}–${Q.time(Date.parse(walk.end))}`),
        Q.el("span", "walk-item-code", walk.code),
      );
      button.addEventListener("click", () => pick(walk.code));
      items.append(button);
    }
    section.querySelector(".walk-none").hidden = walks.length > 0;
  }

  function renderDetail() {
    const box = section.querySelector(".walk-detail");
    box.hidden = detail === null;
    if (!detail) return;
    const w = detail.walk;
    const lang = Q.state.lang;
    const day = Q.dayParams().day ? `&day=${Q.dayParams().day}` : "";
    box.querySelector(".walk-title").textContent = Q.label("walk_title", {
      kit: w.device, start: Q.time(Date.parse(w.start)), end: Q.time(Date.parse(w.end)), code: w.code,
    });
    box.querySelector(".walk-map").src = `${Q.config.base}walk/${w.code}/map.svg?lang=${lang}${day}`;
    box.querySelector(".walk-profile").src = `${Q.config.base}walk/${w.code}/profile.svg?lang=${lang}${day}`;
    box.querySelector(".walk-qr").src = `${Q.config.base}walk/${w.code}/qr.svg?lang=${lang}${day}`;
    box.querySelector(".walk-url").textContent = detail.summary_url;
    const mean = box.querySelector(".walk-mean");
    const band = Q.band("pm2_5", w.pm2_5);
    mean.replaceChildren(w.pm2_5 === null ? "—" : Q.withUnit(Q.format(w.pm2_5, "pm2_5"), "µg/m³"),
      Q.el("small", "", `${Q.label("walk_breathed")}${band ? ` · ${Q.bandName(band)}` : ""}`));
    Q.paint(mean, band);
    box.querySelector(".walk-facts").textContent = Q.label("walk_facts", {
      mode: Q.label(`mode_${w.mode}`), km: Q.number(w.distance_m / 1000, 1), min: Q.number(w.duration_s / 60, 0),
    });
    box.querySelector(".walk-compare").textContent = detail.rank && detail.of > 1
      ? Q.label("walk_rank", { rank: detail.rank, of: detail.of, mean: Q.format(detail.day_mean_pm2_5, "pm2_5") })
      : Q.label("walk_alone");
    for (const item of section.querySelectorAll(".walk-item")) item.classList.toggle("on", item.dataset.code === w.code);
  }

  Q.view("walk", {
    init(node) {
      section = node;
      const form = node.querySelector(".walk-code");
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const input = form.querySelector("input");
        if (input.value.trim()) pick(input.value.trim());
        input.value = "";
      });
      Q.on("lang", () => {
        const input = form.querySelector("input");
        input.placeholder = Q.label("walk_code_placeholder");
        input.setAttribute("aria-label", Q.label("walk_code_label"));
        renderList();
        if (detail) loadDetail(detail.walk.code);
      });
      Q.on("mode", () => {
        detail = null;
        loadList();
      });
      window.setInterval(() => {
        if (!section.hidden && !chosen) loadList();
      }, 60000);
      loadList();
    },
    show: loadList,
  });
})();
