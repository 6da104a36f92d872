// aiortmp dashboard: polls the JSON API once a second and previews a stream with mpegts.js
// over HTTP-FLV, or with hls.js over LL-HLS (native HLS where the browser has it). No build
// step; names that come from the network are only ever set with
// textContent. The API answers loopback clients, or anyone with the server's api_token:
// when it asks for one (401), the page prompts for it, keeps it for this tab only
// (sessionStorage) and sends it as a bearer token.
"use strict";

const TOKEN_KEY = "aiortmp.token";
const CODECS = {
  avc1: "H.264", hvc1: "H.265", hev1: "H.265", av01: "AV1", vp09: "VP9", vp08: "VP8",
  h263: "H.263", vp6: "VP6", vp6a: "VP6α", mp4a: "AAC", Opus: "Opus", fLaC: "FLAC",
  ".mp3": "MP3", "ac-3": "AC-3", "ec-3": "E-AC-3", alaw: "G.711 A", ulaw: "G.711 µ",
  speex: "Speex", nellymoser: "Nellymoser", lpcm: "PCM", adpcm: "ADPCM",
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  tokenRejected: false,
  recordingEnabled: false,
  hlsEnabled: false,
  previewKey: null,
  player: null,
  hls: null,
  latencyTimer: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const sent = state.token;
  if (sent) headers.Authorization = "Bearer " + sent;
  const init = Object.assign({ cache: "no-store" }, options, { headers });
  if (init.method === "POST" || init.method === "PUT") {
    // The server takes changes only as JSON (a type no other site's form can send).
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json || {});
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    // Only the answer to the token in use rejects it: a poll still in flight when a new
    // token was entered must not clear that one.
    if (sent && sent === state.token) {
      state.token = "";
      state.tokenRejected = true;
      sessionStorage.removeItem(TOKEN_KEY);
    }
    if (!state.token) $("token-form").hidden = false;
    throw new Error(state.tokenRejected ? "wrong API token" : "the API needs a token");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.status + " " + response.statusText);
  return body;
}

// -- formatting ---------------------------------------------------------------------------

function bitrate(bps) {
  if (!bps) return "0";
  if (bps >= 1e6) return (bps / 1e6).toFixed(2) + " Mb/s";
  return (bps / 1e3).toFixed(0) + " kb/s";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return (h ? h + ":" + pad(m) : m) + ":" + pad(s % 60);
}

function videoText(v) {
  if (!v) return "–";
  const parts = [CODECS[v.codec] || v.codec];
  if (v.profile) parts.push(v.profile);
  if (v.width && v.height) parts.push(v.width + "×" + v.height);
  if (v.fps) parts.push(Math.round(v.fps * 100) / 100 + " fps");
  return parts.join(" ");
}

function audioText(a) {
  if (!a) return "–";
  const parts = [CODECS[a.codec] || a.codec];
  if (a.profile) parts.push(a.profile);
  if (a.sample_rate) parts.push(a.sample_rate / 1000 + " kHz");
  if (a.channels) parts.push(a.channels === 1 ? "mono" : a.channels === 2 ? "stereo" : a.channels + " ch");
  return parts.join(" ");
}

function streamPath(s) {
  return encodeURIComponent(s.app) + "/" + encodeURIComponent(s.name);
}

// -- rendering ----------------------------------------------------------------------------

function renderTotals(server) {
  $("t-uptime").textContent = duration(server.uptime_s);
  $("t-streams").textContent = server.streams;
  $("t-connections").textContent = server.connections;
  $("t-players").textContent = server.players;
}

function renderStreams(streams) {
  const body = document.querySelector("#streams tbody");
  body.replaceChildren();
  $("empty").hidden = streams.length > 0;
  let totalIn = 0;
  let totalOut = 0;
  for (const s of streams) {
    totalIn += s.bitrate_in_bps;
    totalOut += s.bitrate_out_bps;
    const key = s.app + "/" + s.name;
    const row = el("tr");
    row.dataset.stream = key;
    if (key === state.previewKey) row.classList.add("selected");
    row.append(
      el("td", key, "name"),
      el("td", videoText(s.video), "codec"),
      el("td", audioText(s.audio), "codec"),
      el("td", bitrate(s.bitrate_in_bps)),
      el("td", bitrate(s.bitrate_out_bps)),
      el("td", s.players),
      el("td", duration(s.uptime_s)),
      el("td", s.publisher ? s.publisher.remote : "–", "sub"),
    );
    const rec = el("td");
    if (s.recording) {
      rec.append(el("span", "● REC ", "rec"));
      rec.append(el("span", Math.round(s.recording.bytes / 1024) + " KiB", "sub"));
    } else {
      rec.textContent = "–";
    }
    row.append(rec);
    const cell = el("td", null, "actions");
    const actions = el("div");
    cell.append(actions);
    const preview = el("button", "Preview");
    preview.type = "button";
    preview.className = "preview";
    preview.title = "Play it here over HTTP-FLV (mpegts.js)";
    preview.addEventListener("click", () => startPreview(s.app, s.name));
    actions.append(preview);
    if (state.hlsEnabled) {
      const hls = el("button", "HLS");
      hls.type = "button";
      hls.className = "preview-hls";
      hls.title = "Play it here over Low-Latency HLS (hls.js)";
      hls.addEventListener("click", () => startPreview(s.app, s.name, "hls"));
      actions.append(hls);
    }
    if (state.recordingEnabled) {
      const record = el("button", s.recording ? "Stop rec" : "Record");
      record.type = "button";
      record.addEventListener("click", () =>
        act(streamPath(s) + "/record", s.recording ? "DELETE" : "POST"));
      actions.append(record);
    }
    const kick = el("button", "Kick", "danger");
    kick.type = "button";
    kick.title = "Disconnect the publisher";
    kick.addEventListener("click", () => {
      if (confirm("Disconnect the publisher of " + key + "?")) act(streamPath(s), "DELETE");
    });
    actions.append(kick);
    row.append(cell);
    body.append(row);
  }
  $("t-in").textContent = bitrate(totalIn);
  $("t-out").textContent = bitrate(totalOut);
}

async function act(path, method) {
  try {
    await api("api/streams/" + path, { method });
    await refresh();
  } catch (err) {
    setStatus(String(err.message || err), true);
  }
}

function setStatus(text, error) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(error));
}

async function refresh() {
  try {
    const [server, list] = await Promise.all([api("api/server"), api("api/streams")]);
    state.recordingEnabled = server.recording_enabled;
    state.hlsEnabled = Boolean(server.hls_enabled);
    renderTotals(server);
    renderStreams(list.streams);
    setStatus("updated " + new Date().toLocaleTimeString(), false);
  } catch (err) {
    setStatus(String(err.message || err), true);
  }
}

// -- preview ------------------------------------------------------------------------------

function stopPreview() {
  if (state.player) {
    state.player.pause();
    state.player.unload();
    state.player.detachMediaElement();
    state.player.destroy();
    state.player = null;
  }
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  if (state.latencyTimer) {
    clearInterval(state.latencyTimer);
    state.latencyTimer = null;
  }
  const video = $("preview");
  if (video.getAttribute("src")) {
    video.removeAttribute("src");
    video.load();
  }
  state.previewKey = null;
  $("preview-section").hidden = true;
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
}

function startPreview(app, name, protocol = "flv") {
  stopPreview();
  const key = app + "/" + name;
  const path = encodeURIComponent(app) + "/" + encodeURIComponent(name);
  const url = new URL(path + (protocol === "hls" ? "/index.m3u8" : ".flv"), location.href).href;
  state.previewKey = key;
  $("preview-section").hidden = false;
  $("preview-name").textContent = key;
  $("preview-protocol").textContent = protocol === "hls" ? "LL-HLS" : "HTTP-FLV";
  $("preview-url").textContent = url;
  $("preview-url").href = url;
  history.replaceState(null, "", "#" + (protocol === "hls" ? "hls:" : "") + key);
  const video = $("preview");
  if (protocol === "hls") {
    startHLS(video, url);
    return;
  }
  if (!window.mpegts || !mpegts.getFeatureList().mseLivePlayback) {
    $("preview-state").textContent = "this browser cannot play live FLV (no Media Source Extensions)";
    return;
  }
  const player = mpegts.createPlayer(
    { type: "flv", isLive: true, hasAudio: true, hasVideo: true, url },
    {
      enableStashBuffer: false,
      liveBufferLatencyChasing: true,
      liveBufferLatencyMaxLatency: 3,
      liveBufferLatencyMinRemain: 0.5,
      autoCleanupSourceBuffer: true,
    },
  );
  player.on(mpegts.Events.ERROR, (type, detail) => {
    $("preview-state").textContent = "error: " + type + " " + detail;
  });
  player.on(mpegts.Events.MEDIA_INFO, (info) => {
    $("preview-state").textContent = "playing " + (info.mimeType || "");
  });
  player.attachMediaElement(video);
  player.load();
  const played = player.play();
  if (played && played.catch) played.catch(() => {});
  state.player = player;
  $("preview-state").textContent = "loading…";
}

function startHLS(video, url) {
  const played = () => {
    const promise = video.play();
    if (promise && promise.catch) promise.catch(() => {});
  };
  if (window.Hls && Hls.isSupported()) {
    // Media Source Extensions: hls.js, following blocking playlist reloads and parts.
    const hls = new Hls({ lowLatencyMode: true, backBufferLength: 30 });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) $("preview-state").textContent = "error: " + data.type + " " + data.details;
    });
    hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
      $("preview-state").textContent = "playing " + data.levels.length + " rendition(s)";
      played();
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    state.hls = hls;
    state.latencyTimer = setInterval(() => {
      if (state.hls && Number.isFinite(state.hls.latency) && state.hls.latency > 0) {
        const level = state.hls.levels[state.hls.currentLevel];
        const size = level && level.width ? " · " + level.width + "×" + level.height : "";
        $("preview-state").textContent =
          "playing · latency " + state.hls.latency.toFixed(2) + " s" + size;
      }
    }, 1000);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url; // Safari: native (LL-)HLS
    played();
  } else {
    $("preview-state").textContent = "this browser cannot play HLS (no Media Source Extensions)";
    return;
  }
  $("preview-state").textContent = "loading…";
}

// -- start --------------------------------------------------------------------------------

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  state.tokenRejected = false;
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("token-form").hidden = true;
  refresh();
});
$("preview-close").addEventListener("click", stopPreview);
for (const node of document.querySelectorAll(".host")) node.textContent = location.hostname;
if (window.mpegts) mpegts.LoggingControl.enableVerbose = false;

refresh();
setInterval(refresh, 1000);
if (location.hash.length > 1) {
  let key = decodeURIComponent(location.hash.slice(1));
  const protocol = key.startsWith("hls:") ? "hls" : "flv";
  if (protocol === "hls") key = key.slice(4);
  const slash = key.indexOf("/");
  if (slash > 0) startPreview(key.slice(0, slash), key.slice(slash + 1), protocol);
}
