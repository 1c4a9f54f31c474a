// Find a person (the episodes page): a photo of a face, sent as the body of POST /api/find (the
// server checks its type, by its bytes, and its size); the answer lists every episode where that
// face appears, nearest first, with its best still, the distance and every stay on screen, each a
// link that plays that moment on the episode's page; then the season cast members they belong to.
"use strict";

(() => {
  const { el, setText } = FP;
  const $ = (id) => document.getElementById(id);
  const input = $("find-photo");
  const status = $("find-status");
  const panel = $("find-results");
  const HINT = status.textContent;
  const TYPES = ["image/jpeg", "image/png", "image/webp", "image/bmp"];
  const MAX_MB = 20;
  const clock = FP.fmtClock;
  let asked = 0; // searches made: only the latest one's answer is shown

  function say(text, cls) {
    status.className = `find-status ${cls || "muted"}`;
    setText(status, text);
  }

  function link(href, text, cls) {
    const a = el("a", cls || null, text);
    a.href = href;
    return a;
  }

  function show(found, preview) {
    $("find-query").src = preview;
    const eps = new Set(found.matches.map((m) => m.episode)).size;
    const within = Object.values(found.thresholds || {}).map((t) => String(t)).join(", ");
    if (found.matches.length) {
      setText($("find-title"), `${found.matches.length} match${found.matches.length === 1 ? "" : "es"} in ${eps} of the ${found.episodes} episodes`);
      setText($("find-sub"), `${found.photo} · nearest first · distance under ${within} · a time plays that moment`);
    } else {
      setText($("find-title"), "No match");
      setText($("find-sub"), `${found.photo}: this face appears in none of the ${found.episodes} episodes${found.episodes ? "" : " (none is clustered yet: build Cluster)"}`);
    }
    const list = $("find-matches");
    list.textContent = "";
    found.matches.forEach((m) => {
      const who = m.name || `Cluster ${m.cluster_id}`; // as the episode's page names it
      const li = el("li", "find-match");
      li.dataset.episode = m.episode;
      li.dataset.cluster = m.cluster_id;
      const face = link(m.link, "", "find-face");
      face.title = `play ${who} in ${m.episode} from ${clock(m.start_s || 0, 1)}`;
      if (m.still) { const img = el("img"); img.src = m.still; img.alt = `${who} in ${m.episode}`; face.appendChild(img); }
      li.appendChild(face);
      const what = el("div", "find-what");
      const head = el("div", "find-who");
      head.append(link(m.link, m.episode, "find-ep"), el("span", "find-name", who));
      if (m.name) head.appendChild(el("span", "muted", `cluster ${m.cluster_id}`));
      if (m.season) head.appendChild(link(m.season.link, `${m.season.season}: cast member ${m.season.cast_id}${m.season.name ? ` ${m.season.name}` : ""}`, "find-season"));
      what.appendChild(head);
      const when = el("div", "find-when");
      m.appearances.forEach((a) => { const t = link(a.link, `${clock(a.start_s, 1)}–${clock(a.end_s, 1)}`, "find-time"); t.title = `play ${who} in ${m.episode} from ${clock(a.start_s, 1)}`; when.appendChild(t); });
      if (typeof m.screen_time_s === "number") when.appendChild(el("span", "muted", `${m.screen_time_s.toFixed(1)} s on screen`));
      what.appendChild(when);
      li.appendChild(what);
      li.appendChild(el("div", "find-distance", `distance ${m.distance.toFixed(3)}`));
      list.appendChild(li);
    });
    const seasons = $("find-seasons");
    seasons.textContent = "";
    found.seasons.forEach((s) => {
      const li = el("li");
      li.append(link(s.link, `season ${s.season}`), el("span", null, `: cast member ${s.cast_id}${s.name ? ` ${s.name}` : ""}, in ${s.episodes.join(", ")}`));
      seasons.appendChild(li);
    });
    (found.skipped || []).forEach((why) => seasons.appendChild(el("li", "warn", `skipped ${why}`)));
    panel.hidden = false;
  }

  async function find(file) {
    const mine = ++asked;
    if (!TYPES.includes(file.type) && !/\.(jpe?g|png|webp|bmp)$/i.test(file.name)) { say(`${file.name}: not a photo (JPEG, PNG, WebP or BMP); give a photo of the face.`, "notice"); return; }
    if (file.size > MAX_MB * 2 ** 20) { say(`${file.name}: over ${MAX_MB} MB, more than a search photo may be; give a smaller photo of the face.`, "notice"); return; }
    say(`Searching for the face in ${file.name}…`, "notice info");
    document.body.dataset.finding = "1";
    const preview = await new Promise((done) => { const r = new FileReader(); r.onload = () => done(r.result); r.onerror = () => done(""); r.readAsDataURL(file); });
    let response;
    let body;
    try {
      response = await fetch("/api/find", { method: "POST", credentials: "same-origin", body: file,
        headers: { "Content-Type": file.type || "application/octet-stream", "X-Photo-Name": encodeURIComponent(file.name) } });
      body = await response.json();
    } catch (err) {
      body = { error: `the server did not answer (${err.message})` };
    }
    if (mine !== asked) return;
    document.body.dataset.finding = "";
    if (!response || !response.ok) { say(body.error || `HTTP ${response.status}`, "notice"); return; }
    say(HINT);
    show(body, preview);
    document.body.dataset.found = String(Date.now());
  }

  input.addEventListener("change", () => { if (input.files.length) find(input.files[0]); input.value = ""; });
  $("find-close").addEventListener("click", () => { panel.hidden = true; });
})();
