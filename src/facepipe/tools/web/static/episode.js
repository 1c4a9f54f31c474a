// An episode's page: its live state (from the same stream as the episodes page), its progress
// chart (pct over time, coloured by step), its clusters, unassigned tracks and contact sheet, and
// the user's corrections: pick clusters or single tracks (their stills), then merge, move, split
// off, name, hide or say "not this person"; each is recorded and rebuilt by the server (the
// Cluster step), and shows here, and on every other open page, when that build ends.
"use strict";

(() => {
  const { el, setText, button } = FP;
  const episode = decodeURIComponent(location.pathname.split("/")[2] || "");
  const api = `/api/episodes/${encodeURIComponent(episode)}`;
  // The chart's colour of each step, by its place in the steps of the board's meta (FP.steps()).
  const COLOURS = ["#2f6fde", "#0ea5a4", "#e0a100", "#8b5cf6"];
  const colourOf = (name) => {
    const step = FP.steps().find((s) => s.name === name);
    return step ? COLOURS[(step.index - 1) % COLOURS.length] : "#98a2b3";
  };
  const $ = (id) => document.getElementById(id);
  let row = null;
  let history = { run_id: null, points: [] };
  let shownKey = null;
  let arriving = null; // states that came while the history was loading
  let shown = null; // the episode's detail as last loaded (clusters, corrections, names)
  let rebuilding = false; // Cluster is being built again: its clusters are the last ones, greyed
  let loads = 0; // detail requests made: only the latest one's answer is shown
  let fixKey = null; // the corrections file as the row last said
  // What is picked: whole clusters (to merge) and single tracks (track id -> its cluster id).
  const picked = { clusters: new Set(), tracks: new Map() };
  let pickedOf = null; // the clusters the picks refer to (ids and tracks): a rebuild drops the picks
  let awaited = null; // the record this page made last, until its build has settled it
  const opened = new Set(); // clusters showing every track

  document.title = `facepipe · ${episode}`;
  setText($("title"), episode);
  const back = el("a", null, "← all episodes");
  back.href = "/";
  $("where").appendChild(back);
  // The video and the timeline of who is on screen when (moments.js); a still's ▶ plays its moment.
  const moments = FPMoments.create({ episode, video: $("video"), note: $("video-note"), timeline: $("timeline"), sub: $("moments-sub"), player: $("player") });

  function paint(next) {
    const before = row;
    row = next;
    if (before && before.busy && !row.busy) settledAt = FP.serverNow();
    if (!before || before.busy !== row.busy || before.video !== row.video) renderPlan(null);
    FP.renderChips($("chips"), row.chips);
    FP.renderBar($("bar"), row);
    document.body.dataset.status = row.status;
    document.body.dataset.pct = typeof row.pct === "number" ? row.pct : "";
    setText($("step"), row.current_step || (row.status === "new" ? "not built yet" : ""));
    setText($("pct"), FP.fmtPct(row.pct));
    setText($("message"), row.message || "");
    setText($("status"), row.status);
    $("status").className = `status ${row.status}`;
    const jobs = $("jobs");
    jobs.textContent = "";
    FP.jobsText(row).forEach((j) => jobs.appendChild(el("div", j.stale ? "stale" : null, j.text)));
    setText($("warn"), FP.warnings(row).join(" · "));
    FP.renderActions($("actions"), row, $("notice"));
    tick();
    // A new run, or a run that ended: the outputs and the history changed. A new correction
    // (from any page or the terminal): the list of corrections did.
    const key = `${row.run_id}|${row.status}|${row.launch ? row.launch.returncode : ""}`;
    const fixes = JSON.stringify(row.corrections || null);
    if (before && key === shownKey && fixes !== fixKey) { fixKey = fixes; loadDetail(); }
    if (!before || key !== shownKey) {
      shownKey = key;
      fixKey = fixes;
      loadDetail();
      if (!before || before.run_id !== row.run_id || row.run_id !== history.run_id) loadHistory();
    }
  }

  function tick() {
    if (!row) return;
    const age = FP.ageSeconds(row.updated_at);
    const active = row.status === "running" || row.status === "pending";
    const parts = [];
    if (active) parts.push(`ETA ${FP.fmtDuration(row.eta_s)}`);
    if (age !== null) parts.push(`last heartbeat ${FP.fmtDuration(age)} ago`);
    setText($("times"), parts.join(" · "));
  }

  // What the plan would build and why, per step in the page's words (runtime/planning.py). A plan
  // older than the one shown never replaces it; while a run holds the episode, and after it until
  // the plan made after it arrives, the page says so instead of the reasons from before the run.
  let planShown = null;
  let settledAt = 0; // when this page saw the episode's last run end (the server's clock)
  function renderPlan(entry) {
    if (entry && !(planShown && entry.planned_at && planShown.planned_at && entry.planned_at < planShown.planned_at)) planShown = entry;
    const p = planShown;
    const plan = $("plan");
    plan.textContent = "";
    if (!row || !row.video) return;
    const line = (cls, text) => plan.appendChild(el("li", cls, text));
    if (row.busy) { line("muted", "A run holds this episode: what is left to build is planned again when it ends."); return; }
    if (!p || p.state === "planning" || (p.planned_at && Date.parse(p.planned_at) < settledAt)) { line("muted", "Planning what is left to build…"); return; }
    if (p.state === "error") { line("plan-error", `The plan failed: ${p.error}`); return; }
    (p.reasons || []).forEach((r) => line(null, r.text));
    if (!(p.reasons || []).length) line("muted", "Nothing to build: every output is up to date.");
    plan.dataset.plannedAt = p.planned_at || "";
  }

  // A new plan (made after every run, whoever ran it): what would run now.
  let plannedAt = null;
  async function loadPlan(meta) {
    const at = meta && meta.plan ? meta.plan.planned_at : null;
    if (!at || at === plannedAt) return;
    plannedAt = at;
    try { renderPlan(await FP.getJSON(`${api}/plan`)); } catch (err) { /* the next plan, or the next detail */ }
  }

  async function loadDetail() {
    let detail;
    const mine = ++loads;
    try { detail = await FP.getJSON(api); } catch (err) { setText($("warn"), err.message); return; }
    if (mine !== loads) return; // a later request was made meanwhile: its answer is the one to show
    renderPlan(detail.plan);
    $("log-section").hidden = !detail.log;
    setText($("log-path"), detail.log || "");
    setText($("log"), (detail.log_tail || []).join("\n") || "(the log is empty or gone)");
    // While Cluster is built again its outputs are gone: the last clusters stay, greyed, until it ends.
    rebuilding = !detail.built && !!shown && shown.built && !!row && row.busy;
    $("clusters-section").classList.toggle("rebuilding", rebuilding);
    if (rebuilding) {
      shown = { ...shown, corrections: detail.corrections };
      showPicks();
      renderCorrections();
      return;
    }
    const sheet = $("sheet");
    const old = $("contact-sheet");
    if (!detail.contact_sheet || !old || old.getAttribute("src") !== detail.contact_sheet) {
      sheet.textContent = "";
      if (detail.contact_sheet) {
        const img = el("img");
        img.src = detail.contact_sheet;
        img.alt = `contact sheet of ${episode}`;
        img.id = "contact-sheet";
        sheet.appendChild(img);
      } else {
        sheet.appendChild(el("div", "muted", "No contact sheet yet: build Cluster."));
      }
    }
    shown = detail;
    moments.load();
    renderClusters();
    renderCorrections();
    const lonely = $("unassigned");
    lonely.textContent = "";
    setText($("unassigned-sub"), detail.built ? `${detail.unassigned_total} track(s)` : "");
    detail.unassigned.forEach((t) => {
      const fig = el("figure");
      const wrap = el("span", "face-wrap");
      if (t.still) { const img = el("img"); img.src = t.still; img.alt = ""; img.loading = "lazy"; wrap.appendChild(img); }
      wrap.appendChild(playButton(t.track_id));
      fig.appendChild(wrap);
      fig.appendChild(el("figcaption", null, `track ${t.track_id}`));
      lonely.appendChild(fig);
    });
    if (detail.built && !detail.unassigned.length) lonely.appendChild(el("div", "muted", "Every track is in a cluster."));
    document.body.dataset.detail = String(Date.now());
  }

  // --- clusters and corrections --------------------------------------------------------------
  const label = (c) => c.name || `Cluster ${c.cluster_id}`;
  const clusterOf = (id) => (shown ? shown.clusters.find((c) => c.cluster_id === id) : null);
  const NAMED_BY = { user: "named by you", distance: "named from a reference photo", elimination: "named from a reference photo" };


  // Send one correction; the server records it and starts the Cluster build that applies it.
  async function correct(body, what, source) {
    const version = shown ? shown.clusters_version : null;
    const answer = await FP.sendCorrection(`${api}/corrections`, { ...body, version }, what, source, $("fix-notice"));
    if (!answer) return false;
    awaited = { id: answer.record.id, what, pid: answer.build ? answer.build.pid : null };
    picked.clusters.clear();
    picked.tracks.clear();
    showPicks();
    loadDetail();
    return true;
  }

  function renderClusters() {
    const d = shown;
    const key = JSON.stringify(d.clusters.map((c) => [c.cluster_id, c.track_stills.map((t) => t.track_id)]));
    // A name being typed survives the redraw, while the clusters are the same.
    const typing = document.querySelector("#clusters .name-form");
    const kept = typing && key === pickedOf ? { id: Number(typing.closest(".card").dataset.cluster), value: typing.querySelector("input").value } : null;
    if (key !== pickedOf) { pickedOf = key; picked.clusters.clear(); picked.tracks.clear(); opened.clear(); }
    const visible = d.clusters.filter((c) => !c.hidden);
    const hidden = d.clusters.filter((c) => c.hidden);
    const grid = $("clusters");
    grid.textContent = "";
    setText($("clusters-sub"), d.built ? `${visible.length} clusters${hidden.length ? ` (and ${hidden.length} hidden)` : ""} · ${d.stills} stills · ${d.embedder || ""} ${d.method || ""}` : "not clustered yet");
    visible.forEach((c) => grid.appendChild(card(c)));
    if (d.built && !visible.length) grid.appendChild(el("div", "muted", "No cluster to show: every one is hidden."));
    if (d.problem) grid.appendChild(el("div", "warn", d.problem));
    $("hidden-section").hidden = !hidden.length;
    setText($("hidden-count"), `(${hidden.length}) · not of interest: passers-by, posters; Unhide shows one again`);
    const box = $("hidden-clusters");
    box.textContent = "";
    hidden.forEach((c) => box.appendChild(card(c)));
    const names = $("names");
    names.textContent = "";
    (d.names || []).forEach((n) => { const o = el("option"); o.value = n; names.appendChild(o); });
    $("fixbar").hidden = !d.built;
    const again = kept && grid.querySelector(`.card[data-cluster="${kept.id}"]`);
    if (again) { nameForm(again, clusterOf(kept.id)); again.querySelector("input.name-input").value = kept.value; }
    showPicks();
  }

  function card(c) {
    const box = el("div", c.hidden ? "card hidden-card" : "card");
    box.dataset.cluster = c.cluster_id;
    const head = el("div", "card-head");
    if (!c.hidden) {
      const tick = el("input");
      tick.type = "checkbox";
      tick.className = "pick";
      tick.title = "Pick this cluster (pick two or more to merge them)";
      tick.setAttribute("aria-label", `pick ${label(c)}`);
      tick.addEventListener("change", () => {
        if (tick.checked) picked.clusters.add(c.cluster_id); else picked.clusters.delete(c.cluster_id);
        showPicks();
      });
      head.appendChild(tick);
    }
    head.appendChild(el("div", "name", label(c)));
    const tools = el("div", "card-tools");
    if (c.hidden) {
      tools.appendChild(button("Unhide", "unhide", (b) => correct({ op: "unhide", clusters: [c.cluster_id] }, `Unhide ${label(c)}`, b)));
    } else {
      tools.appendChild(button("Name…", "name", () => nameForm(box, c)));
      tools.appendChild(button("Hide", "hide", (b) => correct({ op: "hide", clusters: [c.cluster_id] }, `Hide ${label(c)}`, b)));
    }
    head.appendChild(tools);
    box.appendChild(head);
    const time = typeof c.screen_time_s === "number" ? `${c.screen_time_s.toFixed(1)} s on screen` : "";
    box.appendChild(el("div", "facts", `${time} · ${c.tracks} track${c.tracks === 1 ? "" : "s"}${c.named_by ? ` · ${NAMED_BY[c.named_by] || `named by ${c.named_by}`}` : ""}${c.corrected_by.length ? " · corrected" : ""}`));
    const thumbs = el("div", "thumbs");
    const all = opened.has(c.cluster_id) || c.hidden ? c.track_stills : c.track_stills.slice(0, 8);
    (c.hidden ? all.slice(0, 4) : all).forEach((t) => thumbs.appendChild(face(c, t)));
    if (!c.hidden && c.track_stills.length > all.length) {
      thumbs.appendChild(button(`+${c.track_stills.length - all.length} more`, "more", () => { opened.add(c.cluster_id); box.replaceWith(card(c)); }, "more"));
    }
    box.appendChild(thumbs);
    if (!c.hidden && c.similar && c.similar.length) {
      const near = el("div", "similar");
      near.appendChild(el("span", "muted", "Similar, merge?"));
      c.similar.forEach((s) => {
        const other = clusterOf(s.cluster_id);
        const chip = el("button", "suggest", `${other ? label(other) : `Cluster ${s.cluster_id}`} · ${s.distance.toFixed(2)}`);
        chip.type = "button";
        chip.dataset.action = "merge-similar";
        chip.dataset.with = s.cluster_id;
        chip.title = `Merge ${label(c)} with ${other ? label(other) : `Cluster ${s.cluster_id}`} (cosine distance ${s.distance})`;
        chip.addEventListener("click", () => correct({ op: "merge", clusters: [c.cluster_id, s.cluster_id] }, `Merge ${label(c)} and ${other ? label(other) : s.cluster_id}`, chip));
        near.appendChild(chip);
      });
      box.appendChild(near);
    }
    return box;
  }

  // ▶ on a track's still: plays the video from the track's start.
  function playButton(trackId) {
    const play = el("button", "face-play", "▶");
    play.type = "button";
    play.dataset.play = trackId;
    play.title = `Play track ${trackId}'s moment`;
    play.setAttribute("aria-label", `play track ${trackId}`);
    play.addEventListener("click", (ev) => { ev.stopPropagation(); moments.playTrack(trackId); });
    return play;
  }

  // One track, as its best still: a click picks it (to split it off, move it, or say it is not
  // this person); its ▶ plays its moment.
  function face(c, t) {
    const wrap = el("span", "face-wrap");
    wrap.append(pickable(c, t), playButton(t.track_id));
    return wrap;
  }

  function pickable(c, t) {
    const fig = el("button", "face");
    fig.type = "button";
    fig.dataset.track = t.track_id;
    fig.title = c.hidden ? `track ${t.track_id}` : `track ${t.track_id}: click to pick it`;
    fig.disabled = c.hidden;
    if (t.still) { const img = el("img"); img.src = t.still; img.alt = `track ${t.track_id}`; img.loading = "lazy"; fig.appendChild(img); } else fig.appendChild(el("span", "nostill", `#${t.track_id}`));
    fig.addEventListener("click", () => {
      if (picked.tracks.has(t.track_id)) picked.tracks.delete(t.track_id); else picked.tracks.set(t.track_id, c.cluster_id);
      showPicks();
    });
    return fig;
  }

  function nameForm(box, c) {
    if (box.querySelector("form")) { box.querySelector("input.name-input").focus(); return; }
    const form = el("form", "name-form");
    const input = el("input", "name-input");
    input.setAttribute("list", "names");
    input.placeholder = "Full name";
    input.value = c.named_by === "user" ? c.name : "";
    input.setAttribute("aria-label", `name of ${label(c)}`);
    const save = el("button", "primary", "Save");
    save.type = "submit";
    save.dataset.action = "save-name";
    const cancel = button("Cancel", "cancel-name", () => form.remove());
    form.append(input, save, cancel);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!input.value.trim()) { input.focus(); return; }
      if (await correct({ op: "name", clusters: [c.cluster_id], name: input.value.trim() }, `Name ${label(c)} "${input.value.trim()}"`, save)) form.remove();
    });
    box.querySelector(".card-head").after(form);
    input.focus();
  }

  // The picks, on the cards and in the bar of actions they allow.
  function showPicks() {
    document.querySelectorAll("#clusters .card").forEach((box) => {
      const id = Number(box.dataset.cluster);
      box.classList.toggle("picked", picked.clusters.has(id));
      const tick = box.querySelector("input.pick");
      if (tick) tick.checked = picked.clusters.has(id);
      box.querySelectorAll(".face").forEach((f) => f.classList.toggle("picked", picked.tracks.has(Number(f.dataset.track))));
    });
    const info = $("fix-selection");
    const bar = $("fix-actions");
    bar.textContent = "";
    const nc = picked.clusters.size;
    const tracks = [...picked.tracks.keys()];
    const from = [...new Set(picked.tracks.values())];
    if (rebuilding) {
      setText(info, "Cluster is being built again with the corrections: these are the clusters as they were, until it ends.");
      info.className = "fix-selection";
      return;
    }
    if (!nc && !tracks.length) {
      setText(info, "Tick clusters to merge them; click faces to pick single tracks (to split them off, move them or say they are not this person).");
      info.className = "fix-selection muted";
      return;
    }
    info.className = "fix-selection";
    const parts = [];
    if (nc) parts.push(`${nc} cluster${nc === 1 ? "" : "s"}: ${[...picked.clusters].map((id) => label(clusterOf(id) || { cluster_id: id })).join(", ")}`);
    if (tracks.length) parts.push(`${tracks.length} track${tracks.length === 1 ? "" : "s"} of ${from.map((id) => label(clusterOf(id) || { cluster_id: id })).join(", ")}`);
    let hint = "";
    if (nc && tracks.length) hint = " · pick clusters or tracks, not both";
    else if (nc === 1) hint = " · tick another cluster to merge with it";
    else if (from.length > 1) hint = " · pick tracks of one cluster to move them";
    setText(info, `Picked ${parts.join("; ")}${hint}`);
    if (nc >= 2 && !tracks.length) {
      const ids = [...picked.clusters];
      bar.appendChild(button(`Merge ${nc} clusters`, "merge", (b) => correct({ op: "merge", clusters: ids }, `Merge ${ids.map((id) => label(clusterOf(id))).join(", ")}`, b), "primary"));
    }
    if (!nc && tracks.length && from.length === 1) {
      const source = clusterOf(from[0]);
      const what = `${tracks.length === 1 ? `track ${tracks[0]}` : `${tracks.length} tracks`} of ${label(source)}`;
      bar.appendChild(button("Split off", "split", (b) => correct({ op: "split", clusters: [source.cluster_id], tracks, into: null }, `Split ${what} off`, b)));
      const target = el("select", "move-target");
      target.setAttribute("aria-label", "move the tracks to");
      const first = el("option", null, "Move to…");
      first.value = "";
      target.appendChild(first);
      shown.clusters.filter((c) => !c.hidden && c.cluster_id !== source.cluster_id).forEach((c) => {
        const o = el("option", null, label(c));
        o.value = c.cluster_id;
        target.appendChild(o);
      });
      target.addEventListener("change", () => {
        if (target.value === "") return;
        const into = clusterOf(Number(target.value));
        correct({ op: "split", clusters: [source.cluster_id], tracks, into: into.cluster_id }, `Move ${what} to ${label(into)}`, target);
      });
      bar.appendChild(target);
      bar.appendChild(button("Not this person", "not", (b) => correct({ op: "not", clusters: [source.cluster_id], tracks }, `${what}: not this person`, b)));
    }
    bar.appendChild(button("Clear", "clear", () => { picked.clusters.clear(); picked.tracks.clear(); showPicks(); }));
  }

  function renderCorrections() {
    const fixes = shown.corrections;
    // Where each applied record is now: the clusters it changed, as the page names them.
    const now = (h) => shown.clusters.filter((c) => (c.corrected_by || []).includes(h.id)).map(label).join(", ");
    FP.renderFixes($("fixes"), fixes, (h, b) => correct({ op: "undo", record: h.id }, `Undo ${h.note || h.id}`, b), now);
    const live = fixes.history.filter((h) => h.op !== "undo");
    setText($("fixes-sub"), `${live.length} correction${live.length === 1 ? "" : "s"} · kept in ${fixes.file}`);
    setText($("fixes-problem"), fixes.problem || "");
    const pending = fixes.history.filter((h) => h.state === "pending").length;
    let status = "";
    if (fixes.waiting) status = "A correction was recorded while a run holds this episode: this page starts the Cluster build that applies it when that run ends.";
    else if (pending && row && row.busy) status = `${pending} correction${pending === 1 ? "" : "s"} not applied yet: the build running now applies ${pending === 1 ? "it" : "them"} (or the next one, if it read the corrections before).`;
    else if (pending) status = `${pending} correction${pending === 1 ? "" : "s"} not applied yet: press Cluster to apply ${pending === 1 ? "it" : "them"}.`;
    setText($("fixes-status"), status);
    // The correction this page made last: say how it ended once its build has settled it.
    const mine = awaited && fixes.history.find((h) => h.id === awaited.id);
    const launch = row && row.launch;
    const ended = awaited && (awaited.pid ? launch && launch.pid === awaited.pid && !launch.alive : !fixes.waiting && row && !row.busy && mine && mine.state !== "pending");
    if (mine && ended) {
      const notice = $("fix-notice");
      let text = `${awaited.what}: ${mine.state === "undo" ? "done" : mine.state}.`;
      if (mine.state === "unmatched") text = `${awaited.what}: found nothing (${mine.why}).`;
      if (mine.state === "pending") text = `${awaited.what}: not applied, its build ended without applying it (see the message above); press Cluster to try again.`;
      notice.className = mine.state === "unmatched" || mine.state === "pending" ? "notice" : "notice info";
      setText(notice, text);
      awaited = null;
      setTimeout(() => { if (notice.textContent === text) setText(notice, ""); }, 10000);
    }
  }

  async function loadHistory() {
    arriving = [];
    try { history = await FP.getJSON(`${api}/history`); } catch (err) { arriving = null; return; }
    const waiting = arriving;
    arriving = null;
    const last = history.points.length ? history.points[history.points.length - 1].t : "";
    extend(waiting.filter((u) => u.updated_at > last));
    chart();
  }

  // Every state written since the last event (from progress.jsonl): the chart misses none. While the
  // history loads, they wait, and those it does not hold are added after it.
  function extend(states) {
    if (arriving) { arriving.push(...states); return; }
    const mine = states.filter((u) => u.run_id && u.run_id === history.run_id && typeof u.pct === "number");
    mine.forEach((u) => history.points.push({ t: u.updated_at, pct: u.pct, status: u.status, step: (FP.stepAt(u.step_index || 1) || {}).name }));
    if (mine.length) chart();
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
    return node;
  }

  // pct (0-100 %) over the run's time, one polyline per stretch of a step, in that step's colour.
  function chart() {
    const box = $("chart");
    box.textContent = "";
    const points = history.points.filter((p) => p.t && typeof p.pct === "number");
    if (points.length < 1) { box.appendChild(el("div", "muted", "No progress recorded yet.")); return; }
    const W = 1000, H = 220, L = 44, R = 12, T = 10, B = 26;
    const t0 = Date.parse(points[0].t);
    const last = Date.parse(points[points.length - 1].t);
    const span = Math.max(1000, last - t0);
    const x = (t) => L + ((Date.parse(t) - t0) / span) * (W - L - R);
    const y = (p) => T + (1 - p) * (H - T - B);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
    [0, 0.25, 0.5, 0.75, 1].forEach((p) => {
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), stroke: "#e3e6eb", "stroke-width": 1 }));
      const label = svg("text", { x: L - 6, y: y(p) + 4, "text-anchor": "end", "font-size": 11, fill: "#667085" });
      label.textContent = `${p * 100}%`;
      root.appendChild(label);
    });
    const end = svg("text", { x: W - R, y: H - 6, "text-anchor": "end", "font-size": 11, fill: "#667085" });
    end.textContent = FP.fmtDuration(span / 1000);
    const start = svg("text", { x: L, y: H - 6, "font-size": 11, fill: "#667085" });
    start.textContent = "0 s";
    root.append(start, end);
    let stretch = [];
    const flush = () => {
      if (!stretch.length) return;
      const colour = colourOf(stretch[0].step);
      root.appendChild(svg("polyline", { points: stretch.map((p) => `${x(p.t).toFixed(1)},${y(p.pct).toFixed(1)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 3, "stroke-linejoin": "round", "data-step": stretch[0].step }));
    };
    points.forEach((p, i) => {
      if (stretch.length && stretch[0].step !== p.step) { flush(); stretch = [points[i - 1]]; stretch[0] = { ...stretch[0], step: p.step }; }
      stretch.push(p);
    });
    flush();
    box.appendChild(root);
    setText($("chart-sub"), `last run · ${points.length} updates`);
    const legend = $("legend");
    if (!legend.children.length) {
      FP.steps().forEach((s) => { const item = el("span", null, s.title); const dot = el("i"); dot.style.background = colourOf(s.name); item.prepend(dot); legend.appendChild(item); });
    }
  }

  FP.connect(
    (rows, meta) => {
      loadPlan(meta);
      const mine = rows.find((r) => r.episode === episode);
      if (mine) paint(mine);
      else setText($("warn"), `No episode ${episode} in the videos folder or the data root.`);
      document.body.dataset.ready = "1";
    },
    (changed, removed, meta, updates) => {
      loadPlan(meta);
      const mine = changed.find((r) => r.episode === episode);
      if (mine) paint(mine);
      extend(updates[episode] || []);
    },
    $("live"),
  );
  setInterval(tick, 1000);
})();
