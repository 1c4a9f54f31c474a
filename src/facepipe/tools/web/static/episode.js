// An episode's page: its live state (from the same stream as the episodes page), its progress
// chart (pct over time, coloured by step), its clusters, unassigned tracks and contact sheet.
"use strict";

(() => {
  const { el, setText } = FP;
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

  document.title = `facepipe · ${episode}`;
  setText($("title"), episode);
  const back = el("a", null, "← all episodes");
  back.href = "/";
  $("where").appendChild(back);

  function paint(next) {
    const before = row;
    row = next;
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
    // A new run, or a run that ended: the outputs and the history changed.
    const key = `${row.run_id}|${row.status}|${row.launch ? row.launch.returncode : ""}`;
    if (!before || key !== shownKey) {
      shownKey = key;
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

  async function loadDetail() {
    let detail;
    try { detail = await FP.getJSON(api); } catch (err) { setText($("warn"), err.message); return; }
    const plan = $("plan");
    plan.textContent = "";
    const jobs = (detail.plan || {}).jobs || [];
    jobs.forEach((j) => plan.appendChild(el("li", null, `would run ${j.rule}: ${j.reason}`)));
    if (!jobs.length && row && row.video && !row.busy) plan.appendChild(el("li", "muted", "Nothing to build: every output is up to date."));
    $("log-section").hidden = !detail.log;
    setText($("log-path"), detail.log || "");
    setText($("log"), (detail.log_tail || []).join("\n") || "(the log is empty or gone)");
    const sheet = $("sheet");
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
    const grid = $("clusters");
    grid.textContent = "";
    setText($("clusters-sub"), detail.built ? `${detail.clusters.length} clusters · ${detail.stills} stills · ${detail.embedder || ""} ${detail.method || ""}` : "not clustered yet");
    detail.clusters.forEach((c) => {
      const card = el("div", "card");
      card.dataset.cluster = c.cluster_id;
      card.appendChild(el("div", "name", c.name || `Cluster ${c.cluster_id}`));
      const time = typeof c.screen_time_s === "number" ? `${c.screen_time_s.toFixed(1)} s on screen` : "";
      card.appendChild(el("div", "facts", `${time} · ${c.tracks} track${c.tracks === 1 ? "" : "s"}${c.named_by ? ` · named by ${c.named_by}` : ""}`));
      const thumbs = el("div", "thumbs");
      c.stills.forEach((src) => { const img = el("img"); img.src = src; img.alt = ""; img.loading = "lazy"; thumbs.appendChild(img); });
      card.appendChild(thumbs);
      grid.appendChild(card);
    });
    if (detail.problem) grid.appendChild(el("div", "warn", detail.problem));
    const lonely = $("unassigned");
    lonely.textContent = "";
    setText($("unassigned-sub"), detail.built ? `${detail.unassigned_total} track(s)` : "");
    detail.unassigned.forEach((t) => {
      const fig = el("figure");
      if (t.still) { const img = el("img"); img.src = t.still; img.alt = ""; img.loading = "lazy"; fig.appendChild(img); }
      fig.appendChild(el("figcaption", null, `track ${t.track_id}`));
      lonely.appendChild(fig);
    });
    if (detail.built && !detail.unassigned.length) lonely.appendChild(el("div", "muted", "Every track is in a cluster."));
    document.body.dataset.detail = String(Date.now());
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
    (rows) => {
      const mine = rows.find((r) => r.episode === episode);
      if (mine) paint(mine);
      else setText($("warn"), `No episode ${episode} in the videos folder or the data root.`);
      document.body.dataset.ready = "1";
    },
    (changed, removed, meta, updates) => {
      const mine = changed.find((r) => r.episode === episode);
      if (mine) paint(mine);
      extend(updates[episode] || []);
    },
    $("live"),
  );
  setInterval(tick, 1000);
})();
