// Replay: when no live reading has come for config.replay_after seconds, play a recording
// (/api/screen/replay) in real time through the same path as live readings, under a visible label;
// the first live reading stops it (core.js calls QSEC.stopReplay).
"use strict";

(() => {
  const Q = window.QSEC;
  const { config, state } = Q;
  const PRELOAD_MS = 10 * Q.MINUTE; // recorded minutes shown at once when a replay starts

  function replayEvents(data) {
    const start = Date.parse(data.start);
    const events = [];
    for (let s = 0; s < data.steps; s += 1) {
      for (const kit of data.kits) {
        const values = {};
        let any = false;
        for (const [q, list] of Object.entries(kit.values)) {
          if (list[s] !== null && list[s] !== undefined) {
            values[q] = list[s];
            any = true;
          }
        }
        if (any) events.push({ campaign: kit.campaign, device: kit.device, t: start + s * data.step_s * 1000, values });
      }
    }
    return { start, events, length: data.steps * data.step_s * 1000 };
  }
  function playDue() {
    const r = state.replay;
    if (!r) return;
    const now = Q.serverNow();
    while (r.next < r.events.length && r.events[r.next].t + r.shift <= now) {
      const event = r.events[r.next];
      Q.apply({ ...event, t: event.t + r.shift });
      r.next += 1;
    }
    if (r.next >= r.events.length) beginLoop(); // the recording ended: play it again
  }
  function beginLoop() {
    const r = state.replay;
    Q.resetKits();
    r.next = 0;
    r.shift = Q.serverNow() - r.start - Math.min(PRELOAD_MS, r.length / 2);
    playDue();
  }
  async function startReplay() {
    state.replayLoading = true;
    try {
      const data = await Q.api("screen/replay", { q: [config.hero, ...config.tiles].join(",") });
      if (state.mode !== "live" || (state.lastLiveAt !== null && Q.serverNow() - state.lastLiveAt < config.replay_after * 1000)) return;
      state.mode = "replay";
      state.replay = { day: data.day, source: data.source, ...replayEvents(data), next: 0, shift: 0 };
      beginLoop();
      state.replay.timer = window.setInterval(playDue, 1000);
      Q.emit("mode", "replay");
      Q.renderStatus();
    } catch (error) {
      console.warn("qsec: no replay yet", error); // try again at the next check
    } finally {
      state.replayLoading = false;
    }
  }
  Q.stopReplay = () => {
    if (state.mode !== "replay") return;
    window.clearInterval(state.replay.timer);
    state.mode = "live";
    state.replay = null;
    Q.resetKits();
    Q.emit("mode", "live");
    Q.reload();
    Q.renderStatus();
  };
  Q.checkReplay = () => {
    if (!config.replay_after || state.mode !== "live" || state.replayLoading) return;
    const lastFresh = Math.max(state.lastLiveAt || 0, state.startedAt + state.offsetMs);
    if (Q.serverNow() - lastFresh > config.replay_after * 1000) startReplay();
  };
})();
