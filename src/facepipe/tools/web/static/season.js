// A season's page: its live state (from the same stream as the episodes page), its cast as a table
// of seconds on screen per episode (with each member's best still in each episode), the
// screen-time chart and the cast sheet the season stage drew.
"use strict";

(() => {
  const { el, setText } = FP;
  const season = decodeURIComponent(location.pathname.split("/")[2] || "");
  const api = `/api/seasons/${encodeURIComponent(season)}`;
  const $ = (id) => document.getElementById(id);
  let shownKey = null;

  document.title = `facepipe · ${season}`;
  setText($("title"), `Season ${season}`);
  const back = el("a", null, "← all episodes and seasons");
  back.href = "/";
  $("where").appendChild(back);

  function paint(row) {
    FP.renderBar($("bar"), row);
    document.body.dataset.status = row.status;
    setText($("episodes"), `${row.episodes.length} episodes: ${row.episodes.join(", ")}`);
    setText($("step"), row.current_step || (row.status === "new" ? "not built yet" : ""));
    setText($("pct"), FP.fmtPct(row.pct));
    setText($("message"), row.message || "");
    setText($("warn"), (row.warnings || []).join(" · "));
    setText($("status"), row.status);
    $("status").className = `status ${row.status}`;
    $("log-section").hidden = !(row.log_tail && row.log_tail.length);
    setText($("log"), (row.log_tail || []).join("\n"));
    const key = `${row.status}|${row.updated_at}|${row.cast_members}`;
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

  async function load() {
    let detail;
    try {
      detail = await FP.getJSON(api);
    } catch (err) {
      setText($("warn"), err.message);
      return;
    }
    const cast = detail.cast;
    const table = $("cast");
    table.textContent = "";
    $("cast-empty").hidden = !!(cast && cast.cast.length);
    if (cast) {
      setText($("cast-sub"), `${cast.cast.length} members, ${cast.unlinked.length} unlinked clusters · linked below ${cast.threshold} (${cast.embedder})`);
      const head = el("tr");
      ["#", "Name", "Total", ...cast.episodes, "Faces"].forEach((h) => head.appendChild(el("th", null, h)));
      const thead = el("thead");
      thead.appendChild(head);
      const body = el("tbody");
      detail.table.forEach((m) => {
        const tr = el("tr");
        tr.dataset.castId = m.cast_id;
        tr.append(el("td", "num", m.cast_id), el("td", m.name ? "name" : "muted", m.name || "unnamed"),
          el("td", "num", FP.fmtDuration(m.total_s)));
        m.seconds.forEach((s) => tr.appendChild(el("td", s ? "num" : "num muted", s ? FP.fmtDuration(s) : "–")));
        const faces = el("td", "faces");
        m.stills.slice(0, 8).forEach((s) => {
          const img = el("img");
          img.src = s.url;
          img.alt = `${m.name || "#" + m.cast_id} in ${s.episode}`;
          img.title = s.episode;
          img.loading = "lazy";
          faces.appendChild(img);
        });
        tr.appendChild(faces);
        body.appendChild(tr);
      });
      table.append(thead, body);
    }
    if (detail.files["screen_time.png"]) image($("chart"), "screen_time.png", detail.updated_at, "screen time per cast member and episode");
    else setText($("chart"), "not drawn yet");
    if (detail.files["cast.jpg"]) image($("sheet"), "cast.jpg", detail.updated_at, "the cast, best face per episode");
    else setText($("sheet"), "not drawn yet");
    document.body.dataset.ready = "1";
  }

  FP.connect(() => {}, () => {}, $("live"), (rows) => {
    const row = rows.find((r) => r.season === season);
    if (row) paint(row);
  });
})();
