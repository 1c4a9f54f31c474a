// facepipe serve: what both pages share. The live stream (one EventSource: a snapshot on connect,
// then the rows that changed), the actions (POST, same origin), and the small pieces of a row.
"use strict";

const FP = (() => {
  // An episode's steps, in order: [{name, title, index, band}], from the board's meta (the server
  // sends runtime/steps.py's table with every snapshot), never restated here.
  let stepList = [];
  let skewMs = 0; // server clock minus this browser's clock, from each event's `now`

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function setText(node, text) {
    const value = text === undefined || text === null ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function learnSteps(meta) { if (meta && Array.isArray(meta.steps)) stepList = meta.steps; }

  function steps() { return stepList; }

  function stepAt(index) { return stepList.find((s) => s.index === index) || null; }

  function titleOf(name) {
    const step = stepList.find((s) => s.name === name);
    return step ? step.title : name;
  }

  function serverNow() { return Date.now() + skewMs; }

  function ageSeconds(stamp) {
    if (!stamp) return null;
    const t = Date.parse(stamp);
    return Number.isNaN(t) ? null : Math.max(0, (serverNow() - t) / 1000);
  }

  function fmtDuration(s) {
    if (s === null || s === undefined || Number.isNaN(s)) return "–";
    s = Math.round(s);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
  }

  function fmtPct(p) { return typeof p === "number" ? `${Math.floor(p * 100)}%` : "–"; }

  // A time in an episode: m:ss (h:mm:ss past an hour), with `decimals` of a second.
  function fmtClock(t, decimals) {
    const d = decimals || 0;
    const f = 10 ** d;
    const total = Math.round(Math.max(0, t) * f) / f; // rounded once: 59.96 s is 1:00.0, never 0:60.0
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const ss = (total % 60).toFixed(d).padStart(d ? d + 3 : 2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  // Connects the live stream; onSnapshot(rows, meta) on every (re)connection, then
  // onRows(rows, removed, meta, updates) for each change (updates: episode -> every state written since);
  // onSeasons(rows), if given, with every season's row on connection and whenever one changed.
  function connect(onSnapshot, onRows, pill, onSeasons) {
    let source = null;
    const state = (on, text) => {
      document.body.dataset.live = on ? "1" : "0";
      if (pill) { pill.className = `pill live-pill ${on ? "on" : "off"}`; pill.textContent = text; }
    };
    const clock = (data) => { if (data.now) skewMs = Date.parse(data.now) - Date.now(); };
    function open() {
      source = new EventSource("/api/events");
      source.addEventListener("snapshot", (ev) => {
        const data = JSON.parse(ev.data);
        clock(data);
        learnSteps(data.meta);
        state(true, "live");
        onSnapshot(data.rows, data.meta);
        if (onSeasons) onSeasons(data.seasons || []);
      });
      source.addEventListener("rows", (ev) => {
        const data = JSON.parse(ev.data);
        clock(data);
        learnSteps(data.meta);
        onRows(data.rows || [], data.removed || [], data.meta || null, data.updates || {});
        if (onSeasons && data.seasons) onSeasons(data.seasons);
      });
      source.onerror = () => {
        state(false, "reconnecting…");
        if (source.readyState === EventSource.CLOSED) setTimeout(open, 1000);
      };
    }
    open();
    // A page left behind closes its stream: pages the browser keeps for its back button would
    // otherwise each hold a connection, and a browser opens six to one server (the seventh request,
    // a search or a click, then waits for ever). Back on the page, it connects again.
    window.addEventListener("pagehide", () => source.close());
    window.addEventListener("pageshow", (ev) => { if (ev.persisted) open(); });
  }

  // POST `data` (a JSON object; {} by default) to the server: {ok, status, body}.
  async function post(url, data) {
    let response;
    try {
      response = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data || {}) });
    } catch (err) {
      return { ok: false, status: 0, body: { error: `the server did not answer (${err.message})` } };
    }
    let body = {};
    try { body = await response.json(); } catch (err) { body = { error: `HTTP ${response.status}` }; }
    return { ok: response.ok, status: response.status, body };
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  function chipClass(status) { return `chip ${status.replace(/ /g, "-")}`; }

  function renderChips(box, chips) {
    if (box.children.length !== chips.length) {
      box.textContent = "";
      chips.forEach(() => box.appendChild(el("span", "chip")));
    }
    chips.forEach((c, i) => {
      const node = box.children[i];
      const cls = chipClass(c.status);
      if (node.className !== cls) node.className = cls;
      setText(node, c.title);
      node.title = `${c.title}: ${c.status}${c.reason ? ` (${c.reason})` : ""}`;
      node.dataset.status = c.status;
    });
  }

  function renderBar(bar, row) {
    const pct = typeof row.pct === "number" ? row.pct : 0;
    const cls = `bar ${row.status}`;
    if (bar.className !== cls) bar.className = cls;
    const width = `${(pct * 100).toFixed(1)}%`;
    if (bar.firstChild.style.width !== width) bar.firstChild.style.width = width;
  }

  // The action buttons of an episode: a step button per step, Cancel while it is busy, Retry after
  // a failure. Clicks go to the server, which refuses (409) what it cannot do, naming why.
  // A button that calls onClick(itself), named by its data-action.
  function button(text, action, onClick, cls) {
    const b = el("button", cls || null, text);
    b.type = "button";
    b.dataset.action = action;
    b.addEventListener("click", () => onClick(b));
    return b;
  }

  // Post one correction (the server records it and starts the build that applies it), saying in
  // `notice` what happened; the server's answer, or null when it was refused.
  async function sendCorrection(url, body, what, source, notice) {
    if (source) source.disabled = true;
    notice.className = "notice info";
    setText(notice, `${what}: recording…`);
    const result = await post(url, body);
    if (source) source.disabled = false;
    if (!result.ok) {
      notice.className = "notice";
      setText(notice, `${what} refused: ${result.body.error || `HTTP ${result.status}`}`);
      return null;
    }
    setText(notice, result.body.message);
    return result.body;
  }

  // A button's POST, saying in `notice` what it started (or why it was refused).
  function actor(notice) {
    return async (url, button, what) => {
      button.disabled = true;
      setText(notice, "");
      notice.className = "notice";
      const result = await post(url);
      button.disabled = false;
      if (!result.ok) {
        notice.className = "notice";
        setText(notice, `${what} refused: ${result.body.error || `HTTP ${result.status}`}`);
      } else {
        const text = result.body.report ? result.body.report.join("; ") : (result.body.queued ? `${what}: queued (place ${result.body.queued}); it starts when a running build ends` : `${what}: snakemake started (pid ${result.body.pid})`);
        notice.className = "notice info";
        setText(notice, text);
        setTimeout(() => { if (notice.textContent === text) setText(notice, ""); }, 8000);
      }
    };
  }

  function cancelButton(box, url, act) {
    const cancel = el("button", "cancel", "Cancel");
    cancel.dataset.action = "cancel";
    cancel.addEventListener("click", () => act(url, cancel, "Cancel"));
    box.appendChild(cancel);
  }

  // An episode's step buttons (Retry after a failure, Cancel while it runs).
  function renderActions(box, row, notice) {
    const last = stepList.length ? stepList[stepList.length - 1].name : null;
    const failedStep = row.status === "error" ? (row.target || last) : (row.launch && row.launch.error ? row.launch.step : null);
    const key = `${row.busy}|${failedStep}|${row.video}`;
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.textContent = "";
    box.classList.toggle("busy", !!row.busy);
    const act = actor(notice);
    const base = `/api/episodes/${encodeURIComponent(row.episode)}`;
    if (failedStep) {
      const retry = el("button", "retry", "Retry");
      retry.dataset.action = "retry";
      retry.title = `Build ${titleOf(failedStep)} again`;
      retry.addEventListener("click", () => act(`${base}/build/${failedStep}`, retry, "Retry"));
      box.appendChild(retry);
    }
    stepList.forEach(({ name, title }) => {
      const button = el("button", name === last ? "step primary" : "step", title);
      button.dataset.action = name;
      button.title = row.video ? `Build ${title} (and what it needs) for ${row.episode}` : "no video for this episode in the videos folder";
      button.disabled = !row.video;
      button.addEventListener("click", () => act(`${base}/build/${name}`, button, title));
      box.appendChild(button);
    });
    if (row.busy) cancelButton(box, `${base}/cancel`, act);
  }

  // A season's Build button (refused while it runs) and Cancel, on its page and in the seasons table.
  function renderSeasonActions(box, row, notice) {
    const key = `${!!row.busy}`;
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.textContent = "";
    box.classList.toggle("busy", !!row.busy);
    const act = actor(notice);
    const api = `/api/seasons/${encodeURIComponent(row.season)}`;
    const build = el("button", "primary", "Build season");
    build.dataset.action = "build-season";
    build.title = `Build the cast of ${row.season} (and what its episodes need), as snakemake season_target does`;
    build.disabled = !!row.busy;
    build.addEventListener("click", () => act(`${api}/build`, build, "Build season"));
    box.appendChild(build);
    if (row.busy) cancelButton(box, `${api}/cancel`, act);
  }

  function warnings(row) {
    const out = [...(row.warnings || [])];
    if (row.launch && row.launch.error) out.push(row.launch.error);
    return out;
  }

  function jobsText(row) {
    return (row.active || []).map((a) => {
      const where = a.slurm_job_id ? `SLURM ${a.slurm_job_id}` : `pid ${a.pid} on ${a.host}`;
      return { text: `${a.name}: ${where}${a.stale ? " (stale)" : ""}`, stale: a.stale };
    });
  }

  // When a record was made, in this browser's local time (to the minute).
  function fmtWhen(stamp) {
    const t = new Date(stamp);
    if (Number.isNaN(t.getTime())) return stamp || "";
    const pad = (n) => String(n).padStart(2, "0");
    return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}`;
  }

  // A corrections file's records, newest first: when, what, its state (applied, not applied yet,
  // found nothing and why, undone) and an Undo button on each record in effect.
  // `undo(record, button)` posts the undo; `now(record)`, if given, names what it changed as the
  // page shows it now (ids change with every build).
  const FIX_STATE = { applied: "applied", pending: "not applied yet", unmatched: "found nothing", undone: "undone", undo: "" };
  function renderFixes(list, fixes, undo, now) {
    list.textContent = "";
    [...fixes.history].reverse().forEach((h) => {
      const li = el("li", `fix ${h.state}`);
      li.dataset.record = h.id;
      li.dataset.state = h.state;
      const what = el("div", "fix-what");
      what.append(el("span", "fix-when", fmtWhen(h.at)), el("span", "fix-op", h.op), el("span", "fix-note", h.note));
      const where = now && h.state === "applied" ? now(h) : "";
      if (where) what.appendChild(el("span", "fix-now", `now: ${where}`));
      li.appendChild(what);
      const side = el("div", "fix-side");
      if (FIX_STATE[h.state]) side.appendChild(el("span", `fix-state ${h.state}`, FIX_STATE[h.state]));
      if (["applied", "pending", "unmatched"].includes(h.state)) {
        const button = el("button", "undo", "Undo");
        button.dataset.action = "undo";
        button.title = `Undo ${h.id} (line ${h.line} of the corrections file)`;
        button.addEventListener("click", () => undo(h, button));
        side.appendChild(button);
      }
      li.appendChild(side);
      if (h.state === "unmatched" && h.why) li.appendChild(el("div", "fix-why", `Not applied: ${h.why}.`));
      list.appendChild(li);
    });
    if (!fixes.history.length) list.appendChild(el("li", "muted", "No corrections yet."));
  }

  return { fmtClock, renderFixes, fmtWhen, steps, stepAt, titleOf, el, setText, connect, post, getJSON, renderChips, renderBar,
    renderActions, renderSeasonActions, button, sendCorrection, warnings, jobsText, ageSeconds, fmtDuration, fmtPct, serverNow };
})();
