// The episodes page: one table row per episode, built once and patched in place when the server
// says the episode changed, so 500 rows stay cheap. Filters and sorting only reorder rows.
"use strict";

(() => {
  const { el, setText } = FP;
  const rows = new Map(); // episode -> {data, tr, parts}
  const body = document.getElementById("rows");
  const counts = {};
  let filter = "all";
  let search = "";
  let sortKey = "status";

  const GROUPS = ["all", "running", "failed", "needs", "built", "cancelled"];
  const GROUP_LABEL = { all: "All", running: "Running", failed: "Failed", needs: "Needs build", built: "Up to date", cancelled: "Cancelled" };
  const RANK = { running: 0, failed: 1, needs: 2, cancelled: 3, built: 4, other: 5 };

  function groups(row) {
    const out = new Set(["all"]);
    if (row.busy || row.status === "running" || row.status === "pending") out.add("running");
    if (row.status === "error" || (row.launch && row.launch.error)) out.add("failed");
    if (row.status === "cancelled") out.add("cancelled");
    const chips = row.chips.map((c) => c.status);
    if (chips.some((s) => s === "missing" || s === "out of date" || s === "failed")) out.add("needs");
    if (chips.every((s) => s === "built") && !out.has("running") && !out.has("failed")) out.add("built");
    return out;
  }

  function mainGroup(g) {
    for (const name of ["running", "failed", "needs", "cancelled", "built"]) if (g.has(name)) return name;
    return "other";
  }

  function build(row) {
    const tr = el("tr");
    tr.dataset.episode = row.episode;
    const parts = {};
    const ep = el("td", "ep");
    const link = el("a", null, row.episode);
    link.href = `/episodes/${encodeURIComponent(row.episode)}`;
    ep.appendChild(link);
    parts.status = el("div", "sub status");
    ep.appendChild(parts.status);
    const chips = el("td");
    parts.chips = el("div", "chips");
    chips.appendChild(parts.chips);
    const progress = el("td", "progress");
    parts.bar = el("div", "bar");
    parts.bar.appendChild(el("span"));
    const line = el("div", "line");
    parts.step = el("span", "step");
    parts.pct = el("span", "pct");
    line.append(parts.step, parts.pct);
    parts.message = el("div", "message");
    parts.warn = el("div", "warn");
    parts.notice = el("div", "notice");
    progress.append(parts.bar, line, parts.message, parts.warn, parts.notice);
    parts.eta = el("td", "num");
    parts.age = el("td", "num");
    parts.jobs = el("td", "jobs");
    const actions = el("td");
    parts.actions = el("div", "actions");
    actions.appendChild(parts.actions);
    tr.append(ep, chips, progress, parts.eta, parts.age, parts.jobs, actions);
    return { tr, parts };
  }

  function paint(entry) {
    const { data: row, parts, tr } = entry;
    tr.dataset.status = row.status;
    tr.dataset.pct = typeof row.pct === "number" ? row.pct : "";
    setText(parts.status, row.video ? row.status : `${row.status} · no video`);
    parts.status.className = `sub status ${row.status}`;
    FP.renderChips(parts.chips, row.chips);
    FP.renderBar(parts.bar, row);
    setText(parts.step, row.current_step || (row.status === "new" ? "not built yet" : ""));
    setText(parts.pct, FP.fmtPct(row.pct));
    const launchNote = row.launch && row.launch.note && !row.launch.alive ? ` (last launch: ${row.launch.note})` : "";
    setText(parts.message, (row.message || "") + launchNote);
    setText(parts.warn, FP.warnings(row).join(" · "));
    const active = row.status === "running" || row.status === "pending";
    setText(parts.eta, active ? FP.fmtDuration(row.eta_s) : "–");
    const jobs = FP.jobsText(row);
    parts.jobs.textContent = "";
    jobs.forEach((j) => parts.jobs.appendChild(el("div", j.stale ? "stale" : null, j.text)));
    if (!jobs.length) parts.jobs.appendChild(el("div", "muted", "–"));
    FP.renderActions(parts.actions, row, parts.notice);
    tick(entry);
  }

  function tick(entry) {
    const age = FP.ageSeconds(entry.data.updated_at);
    setText(entry.parts.age, age === null ? "–" : `${FP.fmtDuration(age)} ago`);
  }

  function sortValue(entry) {
    const row = entry.data;
    if (sortKey === "episode") return [row.episode];
    if (sortKey === "progress") return [-(row.pct || 0), row.episode];
    if (sortKey === "updated") return [-(Date.parse(row.updated_at || 0) || 0), row.episode];
    return [RANK[entry.group], row.status === "queued" ? (row.launch || {}).queued || 1 : 0, row.episode];
  }

  function compare(a, b) {
    const x = sortValue(a), y = sortValue(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
  }

  function layout() {
    const wanted = [...rows.values()]
      .filter((e) => e.groups.has(filter) && (!search || e.data.episode.toLowerCase().includes(search)))
      .sort(compare);
    const current = [...body.children];
    const same = current.length === wanted.length && wanted.every((e, i) => current[i] === e.tr);
    if (!same) {
      const fragment = document.createDocumentFragment();
      wanted.forEach((e) => fragment.appendChild(e.tr));
      body.textContent = "";
      body.appendChild(fragment);
    }
    document.getElementById("empty").hidden = wanted.length > 0;
    GROUPS.forEach((g) => { counts[g] = 0; });
    rows.forEach((e) => e.groups.forEach((g) => { counts[g] += 1; }));
    document.querySelectorAll(".filters button").forEach((b) => {
      b.classList.toggle("on", b.dataset.filter === filter);
      setText(b.querySelector(".n"), counts[b.dataset.filter] || 0);
    });
    document.body.dataset.rows = String(wanted.length);
  }

  function upsert(row, flash) {
    let entry = rows.get(row.episode);
    if (!entry) {
      entry = { ...build(row), data: row };
      rows.set(row.episode, entry);
    } else if (flash && entry.data.status !== row.status) {
      entry.tr.classList.remove("flash");
      void entry.tr.offsetWidth; // restart the animation
      entry.tr.classList.add("flash");
    }
    entry.data = row;
    entry.groups = groups(row);
    entry.group = mainGroup(entry.groups);
    paint(entry);
  }

  function showMeta(meta) {
    if (!meta) return;
    setText(document.getElementById("where"), `data root ${meta.data_root} · videos ${meta.videos_dir}`);
    const plan = meta.plan || {};
    let text = "plan: computing…";
    if (plan.state === "ready") text = `plan: ${new Date(plan.planned_at).toLocaleTimeString()} (${plan.seconds} s)${plan.refreshing ? " · refreshing…" : ""}`;
    if (plan.state === "error") text = "plan: failed";
    setText(document.getElementById("plan"), text);
    const banner = document.getElementById("banner");
    const problems = [meta.videos_problem, plan.error ? `The plan could not be made: ${plan.error}` : null].filter(Boolean);
    setText(banner, problems.join(" · "));
    banner.className = problems.length ? "banner error" : "banner";
  }

  // The seasons, under the episodes: few, so redrawn whole on each change.
  function showSeasons(list) {
    const box = document.getElementById("seasons");
    document.getElementById("seasons-section").hidden = list.length === 0;
    box.textContent = "";
    list.forEach((s) => {
      const tr = el("tr");
      tr.dataset.season = s.season;
      tr.dataset.status = s.status;
      const name = el("td", "ep");
      const link = el("a", null, s.season);
      link.href = `/seasons/${encodeURIComponent(s.season)}`;
      name.append(link, el("div", `sub status ${s.status}`, s.status));
      const progress = el("td", "progress");
      const bar = el("div", "bar");
      bar.appendChild(el("span"));
      FP.renderBar(bar, s);
      progress.append(bar, el("div", "message", s.message || (s.status === "new" ? "not built yet" : "")));
      if (s.warnings && s.warnings.length) progress.appendChild(el("div", "warn", s.warnings.join(" · ")));
      tr.append(name, el("td", null, `${s.episodes.length}: ${s.episodes.join(", ")}`), progress,
        el("td", "num", s.cast_summary || (s.cast_members === null || s.cast_members === undefined ? "–" : `${s.cast_members} people`)));
      const actions = el("td", "actions");
      const buttons = el("div", "buttons");
      const notice = el("div", "notice");
      FP.renderSeasonActions(buttons, s, notice);
      actions.append(buttons, notice);
      tr.appendChild(actions);
      box.appendChild(tr);
    });
  }

  function setup() {
    document.title = "facepipe · episodes";
    const filters = document.querySelector(".filters");
    GROUPS.forEach((g) => {
      const b = el("button", null, GROUP_LABEL[g]);
      b.dataset.filter = g;
      b.appendChild(el("span", "n", "0"));
      b.addEventListener("click", () => { filter = g; layout(); });
      filters.appendChild(b);
    });
    document.getElementById("search").addEventListener("input", (ev) => { search = ev.target.value.trim().toLowerCase(); layout(); });
    document.getElementById("sort").addEventListener("change", (ev) => { sortKey = ev.target.value; layout(); });
    FP.connect(
      (snapshot, meta) => {
        const seen = new Set(snapshot.map((r) => r.episode));
        [...rows.keys()].filter((ep) => !seen.has(ep)).forEach((ep) => { rows.get(ep).tr.remove(); rows.delete(ep); });
        snapshot.forEach((r) => upsert(r, false));
        showMeta(meta);
        layout();
        // Ready once the rows are painted: the frame after this one has been drawn.
        requestAnimationFrame(() => setTimeout(() => { document.body.dataset.ready = "1"; }));
      },
      (changed, removed, meta) => {
        removed.forEach((ep) => { const e = rows.get(ep); if (e) { e.tr.remove(); rows.delete(ep); } });
        changed.forEach((r) => upsert(r, true));
        showMeta(meta);
        layout();
      },
      document.getElementById("live"),
      showSeasons,
    );
    setInterval(() => rows.forEach(tick), 1000);
  }

  setup();
})();
