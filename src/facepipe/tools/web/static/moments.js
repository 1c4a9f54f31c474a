// An episode's moments: its own video (with who is on screen as captions, appearances.vtt) and the
// interactive timeline (one lane per person shown, longest on screen first, as timeline.png draws
// them). Hovering the timeline says who and when; a click plays from there, a click on a track
// from its start. A video this browser cannot play (a GIF, a codec it lacks) gets a note, and the
// timeline and the rest of the page work without it.
"use strict";

const FPMoments = (() => {
  // px per lane: taller while few, to stand beside the video; never under 18 px
  const laneHeight = (lanes) => Math.max(18, Math.min(34, Math.floor(240 / Math.max(1, lanes))));
  // timeline.png's colours (matplotlib's tab20 without its greys), so a person has one colour in both
  const COLOURS = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
    "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"];
  const NOT_A_PERSON = "#8c8c8c";
  const SVG = "http://www.w3.org/2000/svg";

  const clock = (t, decimals) => FP.fmtClock(t, decimals);

  // seconds on screen: "5.2 s" under a minute, else m:ss
  const seconds = (s) => (s < 60 ? `${s.toFixed(1)} s` : clock(s));

  // seconds between two ticks of the time axis: `most` ticks at most (about one per 60 px)
  function tickStep(duration, most) {
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    return steps.find((s) => duration / s <= most) || 7200;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
    return node;
  }

  function create({ episode, video, note, timeline, sub, player }) {
    const { el, setText } = FP;
    let data = null; // the last timeline from the server
    let failed = false; // the browser cannot play the video
    let pending = null; // a time to seek to once the video's metadata is there
    let head = null; // the playhead
    let labels = []; // lane labels, to mark who is on screen now
    let ticks = null; // draws the time axis's ticks
    const starts = new Map(); // track id -> its start (every track, hidden people's too)
    let opened = false; // the page's own #t=SECONDS, played once
    // facepipe's times count from the video stream's first frame, the player's clock from the
    // file's zero: the player shows time t at t + shift (base.video.stream_start_s)
    let shift = 0;

    function showNote(text, info) {
      note.className = info ? "notice info" : "notice";
      setText(note, text);
    }

    video.addEventListener("error", () => {
      if (!video.getAttribute("src")) return;
      failed = true;
      video.hidden = true;
      document.body.dataset.video = "unplayable";
      const v = data && data.video ? data.video : { name: "this video", type: "" };
      const why = v.type === "image/gif" ? "it is a GIF: browsers show GIFs as pictures, not as video"
        : `its format (${v.type || "unknown"}) or codec is not one this browser plays`;
      showNote(`This browser cannot play ${v.name}: ${why}. The timeline, the stills and the rest of this page work without it; to watch a moment, open the file in a video player (VLC, mpv) at the time the timeline shows.`);
    });
    video.addEventListener("loadedmetadata", () => {
      document.body.dataset.video = "ready";
      if (pending !== null) { const t = pending; pending = null; seek(t, true); }
    });
    ["timeupdate", "seeked"].forEach((ev) => video.addEventListener(ev, () => mark(video.currentTime - shift)));
    // (the captions, appearances.vtt, are written on the player's clock already)

    // Where the video is (or a click asked for, when it cannot play): the playhead and who is on screen.
    function mark(t) {
      if (!data || !data.duration_s || !head) return;
      const at = Math.min(100, Math.max(0, (t / data.duration_s) * 100));
      head.style.left = `${at}%`;
      head.hidden = false;
      head.dataset.t = t.toFixed(2);
      data.lanes.forEach((lane, i) => {
        const here = lane.tracks.some((tr) => tr.start_s <= t && t < tr.end_s);
        if (labels[i]) labels[i].classList.toggle("on", here);
      });
    }

    function seek(t, play) {
      video.currentTime = t + shift;
      if (play) video.play().catch(() => { /* a page opened at a moment: paused there until a click */ });
    }

    // Play from `t` seconds: the video if it plays here, else the playhead alone.
    function playAt(t, opts) {
      const o = opts || {};
      mark(t);
      if (!data || !data.video) { showNote("This episode has no video in the videos folder: nothing to play."); return; }
      if (failed) return;
      if (o.scroll !== false) {
        const box = player.getBoundingClientRect();
        if (box.top < 50 || box.bottom > window.innerHeight) player.scrollIntoView({ block: "center" });
      }
      if (video.readyState >= 1) seek(t, o.play !== false); else { pending = t; if (o.play !== false) video.play().catch(() => {}); }
    }

    function playTrack(trackId) {
      const t = starts.get(trackId);
      if (t === undefined) { showNote(`Track ${trackId} has no time yet: build Cluster (its appearances) first.`); return; }
      playAt(t);
    }

    function setVideo() {
      if (!data.video) {
        video.hidden = true;
        document.body.dataset.video = "none";
        showNote("No video of this episode in the videos folder: the timeline shows who is on screen when, with nothing to play.", true);
        return;
      }
      shift = data.video.start_s || 0;
      if (video.dataset.src !== data.video.url) {
        video.dataset.src = data.video.url;
        failed = false;
        video.hidden = false;
        document.body.dataset.video = "loading";
        setText(note, "");
        video.src = data.video.url;
      }
      const captions = video.querySelector("track[kind=captions]"); // in the page, without a file until built
      if (!data.vtt || captions.getAttribute("src") === data.vtt) return;
      captions.src = data.vtt;
      captions.track.mode = "showing";
    }

    function draw() {
      timeline.textContent = "";
      ticks = null;
      head = null;
      labels = [];
      const d = data;
      if (!d.built) {
        setText(sub, "");
        timeline.appendChild(el("div", "muted", d.problem || "No timeline yet: build Cluster (its last rule writes who is on screen when)."));
        return;
      }
      setText(sub, `${d.people} ${d.people === 1 ? "person" : "people"} · ${clock(d.duration_s)} · hover for who and when; click to play from there, on a track from its start`);
      if (!d.lanes.length) { timeline.appendChild(el("div", "muted", "No face is on screen in this episode.")); return; }
      const grid = el("div", "tl");
      const names = el("div", "tl-labels");
      const area = el("div", "tl-area");
      const totals = el("div", "tl-totals");
      const LANE = laneHeight(d.lanes.length);
      grid.style.setProperty("--lane", `${LANE}px`);
      const height = d.lanes.length * LANE;
      const root = svg("svg", { class: "tl-svg", height, role: "img", "aria-label": `who is on screen when in ${d.video ? d.video.name : "the episode"}` });
      d.lanes.forEach((lane, i) => {
        const colour = lane.cluster_id === null ? NOT_A_PERSON : COLOURS[i % COLOURS.length];
        const name = el("div", lane.cluster_id === null ? "tl-label other" : "tl-label", lane.label);
        name.title = lane.cluster_id === null ? lane.label : `${lane.label}: Cluster ${lane.cluster_id} below, ${seconds(lane.seconds || 0)} on screen`;
        const dot = el("i");
        dot.style.background = colour;
        name.prepend(dot);
        names.appendChild(name);
        labels.push(name);
        totals.appendChild(el("div", "tl-total", typeof lane.seconds === "number" ? seconds(lane.seconds) : ""));
        if (i % 2 === 0) root.appendChild(svg("rect", { x: 0, y: i * LANE, width: "100%", height: LANE, class: "tl-band" }));
        lane.tracks.forEach((tr) => {
          const x = (tr.start_s / d.duration_s) * 100;
          const w = Math.max(0, ((tr.end_s - tr.start_s) / d.duration_s) * 100);
          // a 1 px edge of the lane's colour keeps a one-second stay visible on a 44-minute axis
          root.appendChild(svg("rect", { x: `${x}%`, y: i * LANE + Math.round(LANE * 0.2), width: `${w}%`, height: LANE - 2 * Math.round(LANE * 0.2), fill: colour, stroke: colour, "stroke-width": 1,
            class: "tl-track", "data-track": tr.track_id, "data-start": tr.start_s, "data-lane": i }));
        });
      });
      area.appendChild(root);
      const axis = el("div", "tl-axis");
      area.appendChild(axis);
      const hover = el("div", "tl-hover");
      hover.hidden = true;
      head = el("div", "tl-head");
      head.hidden = true;
      const tip = el("div", "tl-tip");
      tip.hidden = true;
      area.append(hover, head, tip);
      grid.append(names, area, totals);
      timeline.appendChild(grid);
      ticks = () => { // as many as the axis has room for, again when the window is resized
        axis.textContent = "";
        const step = tickStep(d.duration_s, Math.max(2, Math.floor((axis.clientWidth || 600) / 60)));
        for (let t = 0; t <= d.duration_s + 1e-9; t += step) {
          const tick = el("span", t === 0 ? "first" : null, clock(t));
          tick.style.left = `${(t / d.duration_s) * 100}%`;
          axis.appendChild(tick);
        }
      };
      ticks();

      // What is under the pointer: the time, the lane, and the track (a rect, or one within 3 px).
      const under = (ev) => {
        const box = root.getBoundingClientRect();
        const frac = Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
        const t = frac * d.duration_s;
        const i = Math.floor((ev.clientY - box.top) / LANE);
        const lane = d.lanes[i] || null;
        const hit = ev.target.closest ? ev.target.closest("rect.tl-track") : null;
        let track = hit && lane ? lane.tracks.find((tr) => String(tr.track_id) === hit.dataset.track) : null;
        if (!track && lane) {
          const slack = (3 / box.width) * d.duration_s;
          track = lane.tracks.find((tr) => tr.start_s - slack <= t && t <= tr.end_s + slack) || null;
        }
        return { t, frac, lane, track, inside: ev.clientY - box.top < height };
      };
      area.addEventListener("mousemove", (ev) => {
        const u = under(ev);
        hover.hidden = false;
        hover.style.left = `${u.frac * 100}%`;
        let text = clock(u.t, 1);
        if (u.track) text = `${u.track.label} · ${clock(u.track.start_s, 1)}–${clock(u.track.end_s, 1)} (track ${u.track.track_id}) · click: play from ${clock(u.track.start_s, 1)}`;
        else if (u.lane && u.inside) text = `${u.lane.label} · ${clock(u.t, 1)}`;
        setText(tip, text);
        tip.hidden = false;
        const areaBox = area.getBoundingClientRect();
        const left = Math.min(Math.max(0, ev.clientX - areaBox.left + 12), Math.max(0, areaBox.width - tip.offsetWidth));
        tip.style.left = `${left}px`;
        tip.style.top = `${Math.max(0, ev.clientY - areaBox.top - 30)}px`;
      });
      area.addEventListener("mouseleave", () => { hover.hidden = true; tip.hidden = true; });
      area.addEventListener("click", (ev) => {
        const u = under(ev);
        playAt(u.track ? u.track.start_s : u.t, { scroll: false });
      });
      if (video.readyState >= 1 && !failed) mark(video.currentTime - shift);
    }

    // Loads the timeline again (after a build, a correction); a page opened at #t=SECONDS goes there once.
    async function load() {
      let next;
      try { next = await FP.getJSON(`/api/episodes/${encodeURIComponent(episode)}/appearances`); } catch (err) { setText(sub, err.message); return; }
      const same = data && JSON.stringify(data) === JSON.stringify(next);
      data = next;
      starts.clear();
      (data.track_times || []).forEach(([id, start]) => starts.set(id, start));
      setVideo();
      if (!same) draw();
      document.body.dataset.timeline = String(Date.now());
      const asked = location.hash.match(/^#t=(\d+(?:\.\d+)?)$/);
      if (asked && !opened) { opened = true; playAt(Number(asked[1])); }
    }
    // Leaving the page lets go of the video's connection (as common.js's stream does): a player
    // holds one open to read on later. Back on the page, the video is loaded again.
    window.addEventListener("pagehide", () => {
      if (!video.getAttribute("src")) return;
      video.pause();
      video.removeAttribute("src");
      video.load();
      video.dataset.src = "";
    });
    window.addEventListener("pageshow", (ev) => { if (ev.persisted && data) setVideo(); });
    window.addEventListener("resize", () => { if (ticks) ticks(); });
    window.addEventListener("hashchange", () => {
      const asked = location.hash.match(/^#t=(\d+(?:\.\d+)?)$/);
      if (asked) playAt(Number(asked[1]));
    });

    return { load, playAt, playTrack };
  }

  return { create };
})();
