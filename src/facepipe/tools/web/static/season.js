// A season's page: its live state (from the same stream as the episodes page), its cast as a table
// of seconds on screen per episode (with each member's best still in each episode), the
// screen-time chart and the cast sheet the season stage drew, and the user's corrections of the
// cast: merge members, split an episode's appearance off one, name, hide, undo; each is recorded
// and rebuilt by the server (the season), and shows here, and on every other open page, when that
// build ends.
"use strict";

(() => {
  const { el, setText, button } = FP;
  const season = decodeURIComponent(location.pathname.split("/")[2] || "");
  const api = `/api/seasons/${encodeURIComponent(season)}`;
  const $ = (id) => document.getElementById(id);
  let shownKey = null;
  let row = null;
  let shown = null; // the season's detail as last loaded
  let loads = 0; // detail requests made: only the latest one's answer is shown
  let rebuilding = false; // the season is being built again: its cast is the last one, greyed
  let awaited = null; // the record this page made last, until its build has settled it
  const picked = new Set(); // cast ids ticked (to merge them)
  let pickedOf = null; // the cast the picks refer to: a rebuild drops them

  document.title = `facepipe · ${season}`;
  setText($("title"), `Season ${season}`);
  const back = el("a", null, "← all episodes and seasons");
  back.href = "/";
  $("where").appendChild(back);

  function paint(next) {
    row = next;
    renderActions();
    FP.renderBar($("bar"), row);
    document.body.dataset.status = row.status;
    setText($("episodes"), `${row.episodes.length} episodes: ${row.episodes.join(", ")}`);
    setText($("step"), row.current_step || (row.status === "new" ? "not built yet" : ""));
    setText($("pct"), FP.fmtPct(row.pct));
    setText($("message"), row.message || "");
    setText($("status"), row.status);
    $("status").className = `status ${row.status}`;
    $("log-section").hidden = !(row.log_tail && row.log_tail.length);
    setText($("log"), (row.log_tail || []).join("\n"));
    const launch = row.launch || {};
    setText($("warn"), [...(row.warnings || []), ...(launch.error ? [launch.error] : [])].join(" · "));
    const key = `${row.status}|${row.updated_at}|${row.cast_members}|${JSON.stringify(row.corrections || null)}|${launch.returncode}`;
    if (key !== shownKey) {
      shownKey = key;
      load();
    }
  }

  function image(box, name, stamp, alt) {
    box.textContent = "";
    const img = el("img");
    img.src = `/files/seasons/${encodeURIComponent(season)}/${name}?v=${encodeURIComponent(stamp || "")}`;
    img.alt = alt;
    img.loading = "lazy";
    box.appendChild(img);
  }

  // The season's Build and Cancel buttons, as an episode's.
  function renderActions() {
    FP.renderSeasonActions($("actions"), row, $("notice"));
  }

  const label = (m) => (m.name ? `${m.name} (#${m.cast_id})` : `cast member ${m.cast_id}`);
  const memberOf = (id) => (shown ? shown.table.find((m) => m.cast_id === id) : null);


  // Send one correction; the server records it and starts the season build that applies it.
  async function correct(body, what, source) {
    const version = shown ? shown.cast_version : null;
    const answer = await FP.sendCorrection(`${api}/corrections`, { ...body, version }, what, source, $("fix-notice"));
    if (!answer) return false;
    awaited = { id: answer.record.id, what, pid: answer.build ? answer.build.pid : null };
    picked.clear();
    showPicks();
    load();
    return true;
  }

  async function load() {
    let detail;
    const mine = ++loads;
    try {
      detail = await FP.getJSON(api);
    } catch (err) {
      setText($("warn"), err.message);
      return;
    }
    if (mine !== loads) return; // a later request was made meanwhile: its answer is the one to show
    // While the season is built again its cast is gone: the last one stays, greyed, until it ends.
    rebuilding = !detail.cast && !!shown && !!shown.cast && !!row && row.busy;
    $("cast-section").classList.toggle("rebuilding", rebuilding);
    if (rebuilding) {
      shown = { ...shown, corrections: detail.corrections };
      showPicks();
      renderCorrections();
      return;
    }
    shown = detail;
    const cast = detail.cast;
    const key = JSON.stringify(detail.table.map((m) => [m.cast_id, m.episodes]));
    // A name being typed survives the redraw, while the cast is the same.
    const typing = document.querySelector("#cast .name-form");
    const kept = typing && key === pickedOf ? { id: Number(typing.closest("tr").dataset.castId), value: typing.querySelector("input").value } : null;
    if (key !== pickedOf) { pickedOf = key; picked.clear(); }
    const table = $("cast");
    table.textContent = "";
    $("cast-empty").hidden = !!(cast && cast.cast.length);
    $("fixbar").hidden = !(cast && cast.cast.length);
    const names = $("names");
    names.textContent = "";
    (detail.names || []).forEach((n) => { const o = el("option"); o.value = n; names.appendChild(o); });
    if (cast) {
      const hidden = detail.table.filter((m) => m.hidden).length;
      const found = cast.summary || `${cast.cast.length - hidden} people${hidden ? `, ${hidden} hidden` : ""}`;
      setText($("cast-sub"), `${found} · linked below ${cast.threshold} (${cast.embedder})`);
      const head = el("tr");
      ["", "#", "Name", "Total", ...cast.episodes, "Faces"].forEach((h) => head.appendChild(el("th", null, h)));
      const thead = el("thead");
      thead.appendChild(head);
      const body = el("tbody");
      detail.table.forEach((m) => body.appendChild(member(m, cast.episodes)));
      table.append(thead, body);
      const again = kept && body.querySelector(`tr[data-cast-id="${kept.id}"] td.who`);
      if (again) { nameForm(again, memberOf(kept.id)); again.querySelector("input").value = kept.value; }
    }
    showPicks();
    renderCorrections();
    if (detail.files["screen_time.png"]) image($("chart"), "screen_time.png", detail.updated_at, "screen time per cast member and episode");
    else setText($("chart"), "not drawn yet");
    if (detail.files["cast.jpg"]) image($("sheet"), "cast.jpg", detail.updated_at, "the cast, best face per episode");
    else setText($("sheet"), "not drawn yet");
    document.body.dataset.ready = "1";
  }

  function member(m, episodes) {
    const tr = el("tr", m.hidden ? "hidden-row" : null);
    tr.dataset.castId = m.cast_id;
    const pick = el("td", "pick");
    if (!m.hidden) {
      const tick = el("input");
      tick.type = "checkbox";
      tick.className = "pick";
      tick.title = "Pick this cast member (pick two or more to merge them)";
      tick.setAttribute("aria-label", `pick ${label(m)}`);
      tick.addEventListener("change", () => { if (tick.checked) picked.add(m.cast_id); else picked.delete(m.cast_id); showPicks(); });
      pick.appendChild(tick);
    }
    const name = el("td", "who");
    const who = el("div", m.name ? "name" : "muted", m.name || "unnamed");
    if (m.named_by === "user") who.appendChild(el("span", "by", " · named by you"));
    if (m.hidden) who.appendChild(el("span", "by", " · hidden"));
    else if (!m.recurring) who.appendChild(el("span", "by", " · seen in one episode"));
    name.appendChild(who);
    tr.append(pick, el("td", "num", m.cast_id), name, el("td", "num", FP.fmtDuration(m.total_s)));
    m.seconds.forEach((s, i) => {
      const td = el("td", s ? "num" : "num muted", s ? FP.fmtDuration(s) : "–");
      if (s && !m.hidden && m.episodes.length > 1) {
        const ep = episodes[i];
        const split = button("split off", "split", (b) => correct({ op: "split", cast: [m.cast_id], episode: ep }, `Split ${ep} off ${label(m)}`, b), "split");
        split.dataset.episode = ep;
        split.title = `${ep}'s appearance is someone else: split it off ${label(m)}`;
        td.appendChild(split);
      }
      tr.appendChild(td);
    });
    const faces = el("td", "faces");
    m.stills.slice(0, m.hidden ? 2 : 8).forEach((s) => {
      const img = el("img");
      img.src = s.url;
      img.alt = `${m.name || "#" + m.cast_id} in ${s.episode}`;
      img.title = s.episode;
      img.loading = "lazy";
      faces.appendChild(img);
    });
    const tools = el("div", "tools");
    if (m.hidden) {
      tools.appendChild(button("Unhide", "unhide", (b) => correct({ op: "unhide", cast: [m.cast_id] }, `Unhide ${label(m)}`, b)));
    } else {
      tools.appendChild(button("Name…", "name", () => nameForm(name, m)));
      tools.appendChild(button("Hide", "hide", (b) => correct({ op: "hide", cast: [m.cast_id] }, `Hide ${label(m)}`, b)));
    }
    name.appendChild(tools);
    tr.appendChild(faces);
    return tr;
  }

  function nameForm(cell, m) {
    if (cell.querySelector("form")) { cell.querySelector("input").focus(); return; }
    const form = el("form", "name-form");
    const input = el("input", "name-input");
    input.setAttribute("list", "names");
    input.placeholder = "Full name";
    input.value = m.named_by === "user" ? m.name : "";
    input.setAttribute("aria-label", `name of ${label(m)}`);
    const save = el("button", "primary", "Save");
    save.type = "submit";
    save.dataset.action = "save-name";
    form.append(input, save, button("Cancel", "cancel-name", () => form.remove()));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!input.value.trim()) { input.focus(); return; }
      if (await correct({ op: "name", cast: [m.cast_id], name: input.value.trim() }, `Name ${label(m)} "${input.value.trim()}"`, save)) form.remove();
    });
    cell.appendChild(form);
    input.focus();
  }

  function showPicks() {
    document.querySelectorAll("#cast tbody tr").forEach((tr) => {
      const id = Number(tr.dataset.castId);
      tr.classList.toggle("picked", picked.has(id));
      const tick = tr.querySelector("input.pick");
      if (tick) tick.checked = picked.has(id);
    });
    const info = $("fix-selection");
    const bar = $("fix-actions");
    bar.textContent = "";
    if (rebuilding) {
      setText(info, "The season is being built again with the corrections: this is the cast as it was, until it ends.");
      info.className = "fix-selection";
      return;
    }
    if (!picked.size) {
      setText(info, "Tick cast members to merge them; split an episode's appearance off a member with its split off button.");
      info.className = "fix-selection muted";
      return;
    }
    const ids = [...picked];
    info.className = "fix-selection";
    setText(info, `Picked ${ids.map((id) => label(memberOf(id) || { cast_id: id })).join(", ")}${ids.length === 1 ? " · tick another member to merge with it" : ""}`);
    if (ids.length >= 2) bar.appendChild(button(`Merge ${ids.length} cast members`, "merge", (b) => correct({ op: "merge", cast: ids }, `Merge ${ids.map((id) => label(memberOf(id))).join(", ")}`, b), "primary"));
    bar.appendChild(button("Clear", "clear", () => { picked.clear(); showPicks(); }));
  }

  function renderCorrections() {
    const fixes = shown.corrections;
    FP.renderFixes($("fixes"), fixes, (h, b) => correct({ op: "undo", record: h.id }, `Undo ${h.note || h.id}`, b));
    const live = fixes.history.filter((h) => h.op !== "undo");
    setText($("fixes-sub"), `${live.length} correction${live.length === 1 ? "" : "s"} · kept in ${fixes.file}`);
    setText($("fixes-problem"), fixes.problem || "");
    const pending = fixes.history.filter((h) => h.state === "pending").length;
    let status = "";
    if (fixes.waiting) status = "A correction was recorded while a run holds this season: this page starts the season build that applies it when that run ends.";
    else if (pending && row && row.busy) status = `${pending} correction${pending === 1 ? "" : "s"} not applied yet: the build running now applies ${pending === 1 ? "it" : "them"} (or the next one, if it read the corrections before).`;
    else if (pending) status = `${pending} correction${pending === 1 ? "" : "s"} not applied yet: press Build season to apply ${pending === 1 ? "it" : "them"}.`;
    setText($("fixes-status"), status);
    const mine = awaited && fixes.history.find((h) => h.id === awaited.id);
    const launch = row && row.launch;
    const ended = awaited && (awaited.pid ? launch && launch.pid === awaited.pid && !launch.alive : !fixes.waiting && row && !row.busy && mine && mine.state !== "pending");
    if (mine && ended) {
      const notice = $("fix-notice");
      let text = `${awaited.what}: ${mine.state === "undo" ? "done" : mine.state}.`;
      if (mine.state === "unmatched") text = `${awaited.what}: found nothing (${mine.why}).`;
      if (mine.state === "pending") text = `${awaited.what}: not applied, its build ended without applying it (see the message above); press Build season to try again.`;
      notice.className = mine.state === "unmatched" || mine.state === "pending" ? "notice" : "notice info";
      setText(notice, text);
      awaited = null;
      setTimeout(() => { if (notice.textContent === text) setText(notice, ""); }, 10000);
    }
  }

  FP.connect(() => {}, () => {}, $("live"), (rows) => {
    const mine = rows.find((r) => r.season === season);
    if (mine) paint(mine);
  });
})();
