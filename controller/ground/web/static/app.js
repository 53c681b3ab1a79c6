// The ground station's page: the fleet, one drone's instruments, plots,
// camera and update timeline, live from the ground's WebSocket (/ws), whose
// messages are controller/ground/fleet's page protocol. No framework; uPlot
// draws the plots.
"use strict";

(() => {
  const WINDOW_MS = 30000; // what the plots show, as the ground keeps it
  const MOTORS = 4;
  const $ = (id) => document.getElementById(id);

  // state: drone id -> drone; order: ids as first seen; rollouts: id ->
  // the newest view (controller/rollout.View), in arrival order.
  const state = { drones: new Map(), order: [], selected: null, warnings: new Map(), rollouts: new Map(), rollout: null };

  function newDrone(id) {
    return {
      id, sum: { id, known: false, online: false, committed: {}, owner: {}, warnings: 0 },
      last: null, lastAt: 0, series: emptySeries(), markers: [], updates: new Map(),
      camera: null, problems: new Map(), row: null,
    };
  }

  function emptySeries() {
    return { at: [], alt: [], roll: [], pitch: [], motors: Array.from({ length: MOTORS }, () => []) };
  }

  function drone(id) {
    let d = state.drones.get(id);
    if (!d) {
      d = newDrone(id);
      state.drones.set(id, d);
      state.order.push(id);
    }
    return d;
  }

  // ---- messages ----

  const handlers = {
    snapshot(m) {
      state.rollouts.clear(); // each follows the snapshot again
      state.drones.clear();
      state.order = [];
      state.warnings.clear();
      $("fleet").replaceChildren();
      for (const s of m.drones) {
        const d = drone(s.id);
        d.sum = summary(s);
        d.series = seriesOf(s.history);
        d.markers = s.markers;
        d.lastAt = d.series.at.length ? d.series.at[d.series.at.length - 1] : 0;
        d.last = s.last || null;
        for (const u of [...s.updates].reverse()) d.updates.set(u.command, u);
        d.camera = s.camera || null;
        for (const w of s.problems) d.problems.set(w.topic, w);
        renderRow(d);
        if (d.last) rowTelemetry(d, d.last);
      }
      for (const w of m.warnings) state.warnings.set("/" + w.topic, w);
      if (!state.drones.has(state.selected)) {
        const want = decodeURIComponent(location.hash.slice(1));
        select(state.drones.has(want) ? want : state.order[0] || null);
      } else {
        select(state.selected);
      }
      renderWarnings();
    },
    telemetry(m) {
      const d = drone(m.drone);
      if (m.at <= d.lastAt) return; // already in a snapshot
      d.lastAt = m.at;
      d.last = m;
      const s = d.series, t = m.t;
      s.at.push(m.at);
      s.alt.push(t.alt_m);
      s.roll.push(t.roll_deg);
      s.pitch.push(t.pitch_deg);
      for (let i = 0; i < MOTORS; i++) s.motors[i].push(i < t.motors.length ? t.motors[i] : null);
      trim(s, m.at - WINDOW_MS);
      if (m.marker) d.markers.push(m.marker);
      if (!d.row) renderRow(d);
      rowTelemetry(d, m);
      if (state.selected === d.id) {
        readouts(m);
        dirty = true;
      }
    },
    drone(m) {
      const d = drone(m.id);
      d.sum = summary(m);
      renderRow(d);
      if (state.selected === d.id) renderHead(d);
      else if (state.selected === null) select(d.id);
    },
    update(m) {
      const d = drone(m.drone);
      d.updates.delete(m.command); // newest last
      d.updates.set(m.command, m);
      while (d.updates.size > 10) d.updates.delete(d.updates.keys().next().value);
      if (state.selected === d.id) renderTimeline(d);
    },
    camera(m) {
      const d = drone(m.drone);
      d.camera = m;
      if (state.selected === d.id) loadFrame(d);
    },
    warning(m) {
      if (m.drone) {
        const d = drone(m.drone);
        d.problems.set(m.topic, m);
        renderRow(d);
      } else {
        state.warnings.set("/" + m.topic, m);
      }
      renderWarnings();
    },
    rollout(m) {
      const known = state.rollouts.has(m.id);
      state.rollouts.set(m.id, m);
      // Show the one shown as it changes, and a new rollout as it starts.
      if (state.rollout === m.id) selectRollout(m.id);
      else if (!known && (!state.rollouts.has(state.rollout) || isLive(m))) selectRollout(m.id);
      else renderRollouts();
    },
    lagged(m) {
      const el = $("dropped");
      el.hidden = false;
      el.textContent = `${m.dropped} messages dropped (slow connection)`;
    },
  };

  function summary(s) {
    return { id: s.id, known: s.known, online: s.online, committed: s.committed || {}, owner: s.owner || {},
      updating: s.updating || "", warnings: s.warnings || 0 };
  }

  function seriesOf(h) {
    const s = emptySeries();
    s.at = h.at.slice();
    s.alt = h.alt.slice();
    s.roll = h.roll.slice();
    s.pitch = h.pitch.slice();
    for (let i = 0; i < MOTORS; i++) s.motors[i] = (h.motors[i] || []).slice();
    return s;
  }

  function trim(s, from) {
    let n = 0;
    while (n < s.at.length && s.at[n] < from) n++;
    if (n === 0) return;
    for (const k of ["at", "alt", "roll", "pitch"]) s[k].splice(0, n);
    for (const m of s.motors) m.splice(0, n);
  }

  // ---- fleet list ----

  function renderRow(d) {
    if (!d.row) {
      d.row = document.createElement("li");
      d.row.className = "drone";
      d.row.dataset.drone = d.id;
      d.row.innerHTML = '<span class="dot"></span><span class="name"></span><span class="alt"></span>' +
        '<span class="release"></span><span class="updating"></span>';
      d.row.addEventListener("click", () => select(d.id));
      $("fleet").append(d.row);
      $("fleet-empty").hidden = true;
    }
    const r = d.row, s = d.sum;
    r.dataset.online = String(s.online);
    r.querySelector(".name").textContent = d.id;
    const rel = s.committed.flight || Object.values(s.committed)[0] || "";
    r.querySelector(".release").textContent = s.known ? (s.online ? "online" : "offline") + (rel ? " · " + short(rel) : "") : "no state yet";
    const warn = d.problems.size ? ` · ⚠ ${[...d.problems.values()].reduce((a, w) => a + w.count, 0)}` : "";
    r.querySelector(".updating").textContent = (s.updating ? "updating: " + s.updating : "") + warn;
    r.classList.toggle("selected", state.selected === d.id);
  }

  function rowTelemetry(d, m) {
    d.row.dataset.tick = String(m.t.tick);
    d.row.querySelector(".alt").textContent = fixed(m.t.alt_m, 2) + " m · " + (m.t.version || "?");
  }

  function select(id) {
    state.selected = id;
    for (const d of state.drones.values()) if (d.row) d.row.classList.toggle("selected", d.id === id);
    const d = state.drones.get(id);
    $("drone").hidden = !d;
    if (!d) return;
    if (location.hash.slice(1) !== id) history.replaceState(null, "", "#" + encodeURIComponent(id));
    renderHead(d);
    if (d.last) readouts(d.last);
    else for (const k of ["alt", "roll", "pitch", "motors", "owner", "version", "epoch"]) $(k).textContent = "–";
    renderTimeline(d);
    $("camera").removeAttribute("src");
    delete $("camera").dataset.seq;
    $("camera-info").textContent = "no camera frame yet";
    if (d.camera) loadFrame(d);
    dirty = true;
  }

  // ---- one drone ----

  function renderHead(d) {
    const s = d.sum;
    $("drone-id").textContent = d.id;
    const on = $("online");
    on.dataset.online = String(s.online);
    on.textContent = s.known ? (s.online ? "online" : "offline (last will)") : "no state yet";
    $("committed").textContent = Object.entries(s.committed).map(([app, img]) => app + ": " + short(img)).join(", ") || "–";
    $("updating").textContent = s.updating || "none in progress";
  }

  function readouts(m) {
    const t = m.t;
    $("alt").textContent = fixed(t.alt_m, 2) + " m";
    $("roll").textContent = fixed(t.roll_deg, 1) + "°";
    $("pitch").textContent = fixed(t.pitch_deg, 1) + "°";
    $("motors").textContent = t.motors.map((v) => fixed(v, 3)).join("  ");
    const bars = $("motor-bars").children;
    for (let i = 0; i < bars.length; i++) bars[i].style.height = (100 * clamp(t.motors[i] || 0, 0, 1)).toFixed(1) + "%";
    $("owner").textContent = t.instance || "–";
    $("version").textContent = t.version || "–";
    $("epoch").textContent = String(t.epoch);
  }

  function renderTimeline(d) {
    const box = $("timeline");
    const ups = [...d.updates.values()].reverse();
    if (!ups.length) {
      box.innerHTML = '<p class="muted">No update seen since the ground started.</p>';
      return;
    }
    box.replaceChildren(...ups.map(updateEl));
  }

  function updateEl(u) {
    const el = document.createElement("div");
    el.className = "update";
    el.dataset.command = u.command;
    if (u.outcome) el.dataset.outcome = u.outcome;
    const title = document.createElement("div");
    title.className = "title";
    title.append(span("kind", (u.kind || "command") + (u.image ? " to " + short(u.image) : "")),
      span("outcome", u.done ? u.outcome : "in progress…"),
      span("muted", new Date(u.sent_at).toLocaleTimeString() + " · " + u.command));
    el.append(title);
    if (u.reason) el.append(span("reason", u.reason));
    const list = document.createElement("ol");
    list.className = "phases";
    for (const p of u.phases) {
      const li = document.createElement("li");
      li.className = "phase";
      li.dataset.phase = p.phase;
      const b = document.createElement("b");
      b.textContent = p.phase;
      li.append(b, span("t", "+" + Math.round(p.at_ms) + " ms"));
      const extra = [p.outcome, p.bytes ? p.bytes + " B" : "", p.epoch ? "epoch " + p.epoch : ""].filter(Boolean).join(" · ");
      if (extra) li.append(span("t", extra));
      if (p.error) li.append(span("err", p.error));
      list.append(li);
    }
    el.append(list);
    return el;
  }

  // ---- rollouts ----

  const LIVE = ["running", "paused", "aborting", "canceling"];
  function isLive(v) { return LIVE.includes(v.state); }

  function renderRollouts() {
    const list = $("rollouts");
    const views = [...state.rollouts.values()].reverse(); // newest first
    $("rollouts-empty").hidden = views.length > 0;
    list.replaceChildren(...views.map((v) => {
      const li = document.createElement("li");
      li.dataset.rollout = v.id;
      li.dataset.state = v.state;
      li.classList.toggle("selected", state.rollout === v.id);
      const st = span("state", v.state);
      st.dataset.state = v.state;
      li.append(span("name", v.id), st, document.createElement("br"),
        span("muted", `${short(v.image)} · ${v.total.done}/${v.total.drones} done`));
      li.addEventListener("click", () => selectRollout(v.id));
      return li;
    }));
  }

  function selectRollout(id) {
    state.rollout = id;
    renderRollouts();
    const v = state.rollouts.get(id);
    $("rollout").hidden = !v;
    if (v) renderRollout(v);
  }

  function renderRollout(v) {
    $("rollout").dataset.rollout = v.id;
    $("rollout").dataset.state = v.state;
    $("rollout-id").textContent = v.id;
    const st = $("rollout-state");
    st.textContent = v.state;
    st.dataset.state = v.state;
    $("rollout-image").textContent = `${short(v.image)} · max failed ${v.max_failed} (min ${v.min_done}) · on abort ${v.on_abort}`;
    const reason = $("rollout-reason");
    reason.hidden = !v.reason || v.state === "running";
    reason.textContent = v.reason || "";
    $("rollout-pause").disabled = v.state !== "running";
    $("rollout-resume").disabled = v.state !== "paused";
    $("rollout-cancel").disabled = !["running", "paused", "aborting"].includes(v.state);
    const rows = v.waves.map((w, i) => {
      const tr = document.createElement("tr");
      tr.dataset.wave = String(i + 1);
      tr.dataset.current = String(i === v.wave && isLive(v));
      const cells = [String(i + 1), w.drones, w.done, w.failed, w.in_progress, w.unreached, w.pending,
        w.rolled_back ? w.rolled_back + (w.rollback_failed ? ` (+${w.rollback_failed} failed)` : "") : "",
        w.soak_until && i === v.wave && isLive(v) ? "soaking until " + new Date(w.soak_until).toLocaleTimeString()
          : w.ended ? "ended" : w.started ? (isLive(v) ? "in progress" : "stopped") : isLive(v) ? "waiting" : "never sent"];
      const cls = ["", "drones", "done", "failed", "in-progress", "unreached", "pending", "rolled-back", "note"];
      cells.forEach((c, k) => {
        const td = document.createElement("td");
        td.className = cls[k];
        td.textContent = String(c);
        tr.append(td);
      });
      return tr;
    });
    $("rollout-waves").tBodies[0].replaceChildren(...rows);
    const box = $("rollout-drones");
    box.replaceChildren(...(v.drones || []).map((d) => {
      const c = document.createElement("span");
      c.className = "cell";
      c.dataset.drone = d.id;
      c.dataset.status = d.status;
      c.dataset.wave = String(d.wave + 1);
      if (d.rollback) c.dataset.rollback = d.rollback;
      c.title = `${d.id} · wave ${d.wave + 1} · ${d.status}` + (d.outcome ? ` (${d.outcome})` : "") +
        (d.rollback ? ` · rollback ${d.rollback}` : "") + (d.error ? ` · ${d.error}` : "");
      c.addEventListener("click", () => { if (state.drones.has(d.id)) select(d.id); });
      return c;
    }));
    const ig = v.ignored;
    $("rollout-ignored").textContent = ig.wrong_drone || ig.late
      ? `ignored: ${ig.wrong_drone} events from the wrong drone, ${ig.late} late events` : "";
  }

  async function controlRollout(what) {
    const id = state.rollout, op = $("rollout-op");
    if (!id) return;
    op.textContent = `${what}: sending…`;
    try {
      const rec = await call("POST", `/api/rollouts/${encodeURIComponent(id)}/${what}`, {});
      op.textContent = `${what}: the rollout is ${rec.state}`;
    } catch (e) {
      op.textContent = `${what}: ${e.message}`;
    }
  }

  // ---- camera: fetch the newest frame, one at a time ----

  let frameLoading = false;

  function loadFrame(d) {
    const img = $("camera");
    const c = d.camera;
    const meta = c.meta ? JSON.stringify(c.meta) : c.comment || "";
    $("camera-info").textContent = `${c.fps.toFixed(1)} fps · frame ${c.seq} · ${c.bytes} B` + (meta ? " · " + meta : "");
    if (frameLoading || img.dataset.seq === String(c.seq)) return;
    frameLoading = true;
    const seq = c.seq, id = d.id;
    img.onload = img.onerror = () => {
      frameLoading = false;
      if (state.selected !== id) return;
      img.dataset.seq = String(seq);
      const now = state.drones.get(id);
      if (now && now.camera && now.camera.seq !== seq) loadFrame(now);
    };
    img.src = `/api/drones/${encodeURIComponent(id)}/camera.jpg?seq=${seq}`;
  }

  // ---- warnings ----

  function renderWarnings() {
    const all = [...state.warnings.values()];
    for (const d of state.drones.values()) all.push(...d.problems.values());
    const box = $("warnings");
    box.hidden = all.length === 0;
    box.replaceChildren(...all.map((w) => {
      const p = document.createElement("p");
      p.className = "warning";
      p.dataset.topic = w.topic;
      if (w.drone) p.dataset.drone = w.drone;
      p.textContent = `⚠ ${w.count} malformed ${w.topic} message${w.count === 1 ? "" : "s"}` +
        (w.drone ? ` from ${w.drone}` : "") + `, ignored; the last: ${w.error}`;
      return p;
    }));
  }

  // ---- plots and the horizon, once per frame ----

  let dirty = false;
  const plots = {};

  function markerHook(u) {
    const d = state.drones.get(state.selected);
    if (!d) return;
    const { ctx, bbox } = u;
    ctx.save();
    ctx.strokeStyle = "#d29922";
    ctx.fillStyle = "#d29922";
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.font = `${11 * devicePixelRatio}px system-ui`;
    for (const m of d.markers) {
      const x = u.valToPos(m.at / 1000, "x", true);
      if (!(x >= bbox.left && x <= bbox.left + bbox.width)) continue;
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
      ctx.fillText(`cut-over → ${m.version || m.to} (epoch ${m.epoch})`, x + 4 * devicePixelRatio, bbox.top + 12 * devicePixelRatio);
    }
    ctx.restore();
  }

  // atLeast is a y range around the data at least span wide, so that a
  // steady hover is a flat line, not noise blown up to the full height.
  function atLeast(span) {
    return (u, min, max) => {
      if (min == null || max == null) return [-span / 2, span / 2];
      const mid = (min + max) / 2, half = Math.max((max - min) * 0.55, span / 2);
      return [mid - half, mid + half];
    };
  }

  function makePlot(el, title, span, series) {
    const axis = { stroke: "#7f93a3", grid: { stroke: "#26333f" }, ticks: { stroke: "#26333f" } };
    return new uPlot({
      title, width: Math.max(el.clientWidth, 300), height: 170,
      scales: { x: { time: true }, y: { range: atLeast(span) } },
      axes: [axis, axis],
      series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 1.5, points: { show: false } }))],
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [markerHook] },
    }, [[], ...series.map(() => [])], el);
  }

  function initPlots() {
    plots.alt = makePlot($("plot-alt"), "altitude (m)", 0.5, [["alt", "#58a6ff"]]);
    plots.att = makePlot($("plot-att"), "attitude (°)", 4, [["roll", "#f0883e"], ["pitch", "#a371f7"]]);
    plots.motors = makePlot($("plot-motors"), "motor outputs (0..1)", 0.1,
      [["m0 FL", "#f0883e"], ["m1 FR", "#58a6ff"], ["m2 RR", "#a371f7"], ["m3 RL", "#3fb950"]]);
    addEventListener("resize", () => {
      for (const [k, p] of Object.entries(plots)) p.setSize({ width: Math.max($("plot-" + k).clientWidth, 300), height: 170 });
    });
  }

  function frame() {
    requestAnimationFrame(frame);
    if (!dirty) return;
    dirty = false;
    const d = state.drones.get(state.selected);
    if (!d) return;
    const s = d.series, x = s.at.map((t) => t / 1000);
    // How many cut-overs the plots mark now, for a test or a script to read.
    $("drone").dataset.markers = String(d.markers.filter((m) => m.at >= (s.at[0] || Infinity)).length);
    plots.alt.setData([x, s.alt]);
    plots.att.setData([x, s.roll, s.pitch]);
    plots.motors.setData([x, ...s.motors]);
    if (d.last) horizon(d.last.t.roll_deg, d.last.t.pitch_deg);
  }

  // horizon draws an attitude indicator. Roll is positive left side up
  // (a bank to the right), which turns the horizon anticlockwise; pitch is
  // positive nose down, which raises it.
  function horizon(rollDeg, pitchDeg) {
    const c = $("horizon"), ctx = c.getContext("2d"), w = c.width, h = c.height, r = w / 2;
    const pxPerDeg = 4;
    ctx.save();
    ctx.clearRect(0, 0, w, h);
    ctx.beginPath();
    ctx.arc(r, r, r - 2, 0, 2 * Math.PI);
    ctx.clip();
    ctx.translate(r, r);
    ctx.rotate(-rollDeg * Math.PI / 180);
    const y = -pitchDeg * pxPerDeg;
    ctx.fillStyle = "#2f6db3";
    ctx.fillRect(-2 * w, -2 * h + y, 4 * w, 2 * h);
    ctx.fillStyle = "#7a5230";
    ctx.fillRect(-2 * w, y, 4 * w, 2 * h);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(-2 * w, y);
    ctx.lineTo(2 * w, y);
    ctx.stroke();
    ctx.lineWidth = 1;
    ctx.font = "10px system-ui";
    ctx.fillStyle = "#fff";
    for (let p = -20; p <= 20; p += 5) {
      if (p === 0) continue;
      const py = y - p * pxPerDeg, half = p % 10 === 0 ? 24 : 12;
      ctx.beginPath();
      ctx.moveTo(-half, py);
      ctx.lineTo(half, py);
      ctx.stroke();
      if (p % 10 === 0) ctx.fillText(String(Math.abs(p)), half + 4, py + 3);
    }
    ctx.restore();
    ctx.strokeStyle = "#ffcc00";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.moveTo(r - 50, r);
    ctx.lineTo(r - 15, r);
    ctx.lineTo(r - 8, r + 8);
    ctx.moveTo(r + 50, r);
    ctx.lineTo(r + 15, r);
    ctx.lineTo(r + 8, r + 8);
    ctx.stroke();
    ctx.fillStyle = "#ffcc00";
    ctx.fillRect(r - 2, r - 2, 4, 4);
  }

  // ---- controls ----

  async function call(method, path, body) {
    const res = await fetch(path, {
      method, headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const out = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(out.error || res.status + " " + res.statusText);
    return out;
  }

  async function loadImages() {
    try {
      const { images } = await call("GET", "/api/images");
      const sel = $("image"), keep = sel.value;
      sel.replaceChildren(...images.map((i) => new Option(i, i)));
      if (images.includes(keep)) sel.value = keep;
      $("push").disabled = images.length === 0;
    } catch (e) {
      $("op-status").textContent = "images: " + e.message;
    }
  }

  function confirmThen(text, action) {
    const dlg = $("confirm");
    $("confirm-text").textContent = text;
    dlg.returnValue = "";
    dlg.onclose = () => { if (dlg.returnValue === "ok") action(); };
    dlg.showModal();
  }

  async function send(what, path, body) {
    const status = $("op-status");
    status.textContent = what + ": sending…";
    try {
      const { command } = await call("POST", path, body);
      status.textContent = `${what}: command ${command} sent; its phases follow below`;
    } catch (e) {
      status.textContent = `${what}: ${e.message}`;
    }
  }

  function initControls() {
    $("push").addEventListener("click", () => {
      const id = state.selected, image = $("image").value;
      if (!id || !image) return;
      confirmThen(`Push ${image} to drone ${id}? It takes over the flight in the air, signed with this ground's key.`,
        () => send("push", `/api/drones/${encodeURIComponent(id)}/push`, { image }));
    });
    $("rollback").addEventListener("click", () => {
      const id = state.selected;
      if (!id) return;
      confirmThen(`Roll drone ${id} back to its previous release? It hands the flight back in the air.`,
        () => send("rollback", `/api/drones/${encodeURIComponent(id)}/rollback`, {}));
    });
    $("rollout-pause").addEventListener("click", () => controlRollout("pause"));
    $("rollout-resume").addEventListener("click", () => controlRollout("resume"));
    $("rollout-cancel").addEventListener("click", () => {
      const id = state.rollout;
      if (!id) return;
      confirmThen(`Cancel rollout ${id}? Nothing more is sent; drones in flight finish; nothing is rolled back.`,
        () => controlRollout("cancel"));
    });
    // New images (make images) show up in the menu within 15 s.
    setInterval(() => { if ($("conn").dataset.state === "live") loadImages(); }, 15000);
  }

  // ---- the live feed, reconnecting by itself ----

  let retry = 500;

  function connect() {
    const conn = $("conn");
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = () => {
      retry = 500;
      conn.dataset.state = "live";
      conn.textContent = "live";
      loadImages();
    };
    ws.onmessage = (ev) => {
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (e) {
        return; // the ground sends JSON; anything else is not ours to show
      }
      const h = handlers[m.type];
      if (h) h(m);
    };
    ws.onclose = () => {
      conn.dataset.state = "down";
      conn.textContent = `reconnecting in ${(retry / 1000).toFixed(1)} s…`;
      setTimeout(checkLocked, 0);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  // checkLocked tells a page without the ground's token what to do.
  async function checkLocked() {
    try {
      const res = await fetch("/api/stats");
      if (res.status === 401) {
        $("conn").dataset.state = "locked";
        $("conn").textContent = "locked: open this page as /?token=TOKEN";
      }
    } catch (e) {
      // the ground is down: the reconnect loop goes on
    }
  }

  function fixed(v, n) { return typeof v === "number" ? v.toFixed(n) : "–"; }
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function short(ref) {
    const at = ref.indexOf("@");
    const name = (at < 0 ? ref : ref.slice(0, at)).split("/").pop();
    return at < 0 ? name : name + "@" + ref.slice(at + 1, at + 1 + 19);
  }
  function span(cls, text) {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }

  initPlots();
  initControls();
  horizon(0, 0);
  requestAnimationFrame(frame);
  connect();
})();
