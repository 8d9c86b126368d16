"use strict";
/* bridgehost Mini App: the call. States: idle → starting (microphone, bootstrap) → connecting →
   in_call → ending → ended, or failed on the way (with "Try again" while the launch is valid).
   During a call: Mute (or push to talk), what the agent is doing (delegations to Codex), and,
   in WebRTC mode, recovery of a dropped audio connection: an ICE restart (where the backend
   keeps one upstream peer), then new peer connections, within reconnect_grace_ms, before the
   call ends with network_lost.
   Uses TelegramHost (miniapp-telegram.js), CallSocket (miniapp-socket.js), the relay audio
   classes (miniapp-audio.js) and the texts (miniapp-text.js), inlined before this file. */

const BOOTSTRAP_TIMEOUT_MS = 45000;
/** Bootstrap error codes for init data older than the gateway accepts. */
const INIT_DATA_EXPIRED = new Set(["init_data_stale", "init_data_expired"]);
const REQUEST_TIMEOUT_MS = 10000;
const END_WAIT_SLACK_MS = 3000;
/** A "disconnected" peer often recovers by itself: wait this long before restarting ICE. */
const DISCONNECT_SETTLE_MS = 1000;
/** How long one recovery step (ICE restart, new peer) may take to reach "connected". */
const RECOVERY_STEP_MS = 6000;
/** Shown while a delegation is answered, then for this long. */
const ANSWERED_SHOWN_MS = 6000;

const settings = JSON.parse(document.getElementById("settings").textContent || "{}");
const tg = new TelegramHost(window);
const app = {state: "idle", mic: null, micRequests: 0, audioContext: null, call: null,
  abort: null, wakeLock: null, ticker: null, retryAt: 0, retryTimer: null, canRetry: true,
  endReason: null, reconnect: false, muted: false, pushToTalk: false, talking: false,
  delegations: new Map()};

/** Counters for tests and debugging (read-only view of the current call). */
window.__bridgehostStats = {
  get state() { return app.state; },
  get transport() { return app.call ? app.call.transport : settings.transport; },
  get micRequests() { return app.micRequests; },
  get framesSent() { return app.call ? app.call.socket.stats.audioSent : 0; },
  get framesReceived() { return app.call ? app.call.socket.stats.audioReceived : 0; },
  get bytesReceived() { return app.call ? app.call.socket.stats.audioBytesReceived : 0; },
  get reconnects() { return app.call ? app.call.socket.stats.reconnects : 0; },
  get eventsAcked() { return app.call ? app.call.socket.stats.eventsAcked : 0; },
  get unacknowledged() { return app.call ? app.call.socket.unacknowledged().length : 0; },
  get wakeLock() { return Boolean(app.wakeLock); },
  get endReason() { return app.endReason; },
  get reconnectOffered() { return app.reconnect; },
  get muted() { return app.muted; },
  get pushToTalk() { return app.pushToTalk; },
  get sending() { return micOpen(); },
  get iceRestarts() { return app.call ? app.call.iceRestarts : 0; },
  get peerRestarts() { return app.call ? app.call.peerRestarts : 0; },
  get mediaRecoveries() { return app.call ? app.call.mediaRecoveries : 0; },
  get recovering() { return Boolean(app.call && app.call.recovering); },
  get connectionState() { return app.call && app.call.pc ? app.call.pc.connectionState : ""; },
  get muteMessages() { return app.call ? app.call.muteMessages.slice() : []; },
  get activity() { return ui.activity.hidden ? "" : ui.activityText.textContent; },
  get playback() { return app.call && app.call.player ? app.call.player.stats : null; },
};

// -- presentation ---------------------------------------------------------------------------

/** Enter a state: status line (read out by screen readers), buttons, clock visibility. */
function setState(state, message) {
  app.state = state;
  document.body.dataset.state = state;
  if (message !== undefined) ui.status.textContent = message;
  const busy = state === "starting" || state === "connecting";
  ui.start.hidden = !(state === "idle" || state === "failed" || state === "ended");
  ui.start.disabled = !app.canRetry && state !== "idle";
  ui.hangup.hidden = !(busy || state === "in_call" || state === "ending");
  ui.hangup.disabled = state === "ending";
  ui.hangup.textContent = busy ? "Cancel" : state === "ending" ? "Hanging up…" : "Hang up";
  ui.hangup.setAttribute("aria-label", busy ? "Cancel the call" : "Hang up the call");
  ui.clock.hidden = !(state === "in_call" || state === "ending");
  ui.mute.hidden = state !== "in_call" || app.pushToTalk;
  ui.talk.hidden = state !== "in_call" || !app.pushToTalk;
  ui.pttOption.hidden = state !== "in_call" || !settings.push_to_talk;
  if (state !== "in_call") showActivity("");
  // After a call without a transcript, the empty box would only push the help out of sight.
  ui.transcriptBox.hidden =
    (state === "ended" || state === "failed") && !ui.transcript.children.length;
  ui.end.hidden = true;
  if (state === "ended" || state === "failed") {
    ui.start.textContent = "Try again";
    ui.start.hidden = !app.canRetry;
    tg.mainButton(app.canRetry ? "" : "Close", app.canRetry ? null : () => tg.close());
  }
}

/** Once a second during a call: elapsed time and what is left of the limit. */
function tick() {
  const call = app.call;
  if (!call || !call.connectedAt) return;
  const elapsed = Date.now() - call.connectedAt;
  ui.elapsed.textContent = formatMs(elapsed);
  const max = Number(call.limits.max_call_ms) || 0;
  ui.remaining.textContent = max ? `${formatMs(max - elapsed)} left` : "";
}

/** After a 429 (or 503 with Retry-After): "Try again in N s" until the wait is over. */
function updateRetryCountdown() {
  const left = Math.ceil((app.retryAt - Date.now()) / 1000);
  if (left > 0) {
    ui.start.disabled = true;
    ui.start.textContent = `Try again in ${left} s`;
    return;
  }
  clearInterval(app.retryTimer);
  app.retryAt = 0;
  ui.start.disabled = false;
  ui.start.textContent = "Try again";
}

// -- microphone, audio context, wake lock ---------------------------------------------------

/** Whether the caller's audio goes out now: not muted, and (push to talk) the button held. */
function micOpen() {
  return app.pushToTalk ? app.talking : !app.muted;
}

/**
 * Apply micOpen() to the call: relay stops sending frames (the worklet makes none); WebRTC
 * disables the track, and where the backend declares data_channel_mute (GPT-Live) also tells
 * the model on the data channel.
 */
function applyMic() {
  const call = app.call;
  const open = micOpen();
  showMuted(app.muted);
  ui.talk.setAttribute("aria-pressed", String(app.talking));
  ui.talk.textContent = app.talking ? "Talking…" : "Hold to talk";
  if (!call || call.ended) return;
  if (call.capture && call.transport !== "webrtc") call.capture.setMuted(!open);
  if (app.mic) for (const track of app.mic.getAudioTracks()) track.enabled = open;
  if (call.transport === "webrtc" && settings.data_channel_mute) {
    sendMuteMessage(call, !open);
  }
}

/** data_channel_mute: session.input_audio.mute / unmute on the oai-events channel, once per
 * change. */
function sendMuteMessage(call, muted) {
  const type = muted ? "session.input_audio.mute" : "session.input_audio.unmute";
  if (call.lastMute === type) return;
  const channel = call.channel;
  if (!channel || channel.readyState !== "open") {
    return; // the channel's onopen sends the mute if it is still wanted
  }
  channel.send(JSON.stringify({type, event_id: `mute_${Date.now()}`}));
  call.lastMute = type;
  call.muteMessages.push(type);
}

/** The Mute button. */
function toggleMute() {
  if (app.state !== "in_call") return;
  app.muted = !app.muted;
  applyMic();
  tg.haptic(app.muted ? "warning" : "success");
}

/** The "Push to talk" option: muted except while "Hold to talk" is held. */
function setPushToTalk(on) {
  app.pushToTalk = Boolean(on) && Boolean(settings.push_to_talk);
  app.talking = false;
  ui.pttMode.checked = app.pushToTalk;
  setState(app.state);
  applyMic();
}

/** Hold to talk: pressed (true) or released (false). */
function holdToTalk(on) {
  if (!app.pushToTalk || app.state !== "in_call" || app.talking === on) return;
  app.talking = on;
  applyMic();
}

/** The microphone stream: asked for once per page and reused for every retry. */
async function microphone() {
  if (app.mic && app.mic.getAudioTracks().some((track) => track.readyState === "live")) {
    return app.mic;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error("no getUserMedia"), {name: "Unsupported"});
  }
  app.micRequests += 1;
  app.mic = await navigator.mediaDevices.getUserMedia({audio: {
    echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1}});
  return app.mic;
}

/** One AudioContext for the page, created and resumed inside the Start tap. */
function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!app.audioContext && Context) app.audioContext = new Context();
  if (app.audioContext && app.audioContext.state === "suspended") {
    app.audioContext.resume().catch(() => {});
  }
  return app.audioContext;
}

/** Keep the screen on during a call (re-acquired when the page becomes visible again). */
async function holdWakeLock() {
  if (!navigator.wakeLock || app.wakeLock || app.state !== "in_call") return;
  try {
    const lock = await navigator.wakeLock.request("screen");
    if (app.state !== "in_call") {
      lock.release().catch(() => {});
      return;
    }
    app.wakeLock = lock;
    lock.addEventListener("release", () => { if (app.wakeLock === lock) app.wakeLock = null; });
  } catch (_err) {
    // Not allowed (hidden page, power saving): the call goes on without it.
  }
}

/** Let the screen sleep again. */
function releaseWakeLock() {
  if (app.wakeLock) app.wakeLock.release().catch(() => {});
  app.wakeLock = null;
}

// -- starting a call ------------------------------------------------------------------------

/** Start (or retry): microphone (once), bootstrap, then connect the call. */
async function startCall() {
  if (!["idle", "failed", "ended"].includes(app.state) || !app.canRetry || app.retryAt) return;
  if (!tg.initData) return;
  const context = audioContext(); // inside the tap: mobile browsers only allow audio from one
  ui.help.hidden = true;
  hideBanner();
  ui.transcript.replaceChildren();
  app.endReason = null;
  setState("starting", "Checking the microphone…");
  let stream;
  try {
    stream = await microphone();
  } catch (err) {
    const help = microphoneHelp(err, tg.platform);
    showHelp(help.title, help.lines);
    setState("failed", "The microphone is not available.");
    return;
  }
  setState("starting", "Connecting to your computer…");
  app.abort = new AbortController();
  const result = await postJson("/api/call/bootstrap",
    {launch_token: settings.launch_token, init_data: tg.initData}, BOOTSTRAP_TIMEOUT_MS,
    app.abort.signal);
  const cancelled = app.abort.signal.aborted;
  app.abort = null;
  if (cancelled) return failed("You cancelled the call.", {retry: true});
  if (!result.ok) return bootstrapFailed(result);
  setState("connecting", "Connecting the call…");
  try {
    await connect(result.body, stream, context);
  } catch (err) {
    await startFailed(err);
  }
}

/** Could not start: say why, and offer "Try again" (after Retry-After) or point to /call. */
function failed(message, {retry, stale = false, retryAfter = 0}) {
  clearInterval(app.retryTimer);
  app.canRetry = retry;
  if (stale) {
    showHelp("A fresh call link is needed.",
      ["Close this window and send /call in Telegram again."]);
  }
  app.retryAt = retry && retryAfter ? Date.now() + retryAfter * 1000 : 0;
  setState("failed", message);
  if (app.retryAt) {
    updateRetryCountdown();
    app.retryTimer = setInterval(updateRetryCountdown, 500);
  }
  tg.haptic("error");
}

/** Map a bootstrap failure to retry (transient) or stale (send /call again). */
function bootstrapFailed(result) {
  const code = (result.body.error && result.body.error.code) || "";
  if (result.status === 0) {
    return failed("Could not reach your computer. Check your connection, then try again.",
      {retry: true});
  }
  const message = errorMessage(result, `The call could not start (error ${result.status}).`);
  if (INIT_DATA_EXPIRED.has(code)) return offerReconnect();
  if ([401, 404, 410].includes(result.status) || code === "surface_disarmed") {
    return failed(message, {retry: false, stale: true});
  }
  if (code === "budget_exhausted" || code === "daily_cost_cap") {
    return failed(message, {retry: false});
  }
  return failed(message, {retry: true, retryAfter: result.retryAfter});
}

/**
 * The page stayed open longer than its Telegram sign-in may be old
 * (realtime.init_data_max_age_ms). Telegram signs a Mini App's init data only when the app
 * opens; nothing in Telegram.WebApp refreshes it in place. So "Tap to reconnect" closes the Mini
 * App, and the Call button in the chat (or /call) opens it again with a fresh sign-in. Outside
 * Telegram (no WebApp to close) it reloads the page, which is all a browser can do.
 */
function offerReconnect() {
  failed("This page was open too long, so its Telegram sign-in expired.", {retry: false});
  showHelp("Tap to reconnect.", [
    "Telegram signs this page in only when it opens, so it has to be opened again.",
    "Tapping the button closes it: open it again with the Call button in the chat, " +
      "or send /call.",
  ]);
  app.reconnect = true;
  ui.start.textContent = "Tap to reconnect";
  ui.start.hidden = false;
  ui.start.disabled = false;
  tg.mainButton("Tap to reconnect", reconnect);
}

/** Close the Mini App so that Telegram opens it again with fresh init data. */
function reconnect() {
  if (!tg.close()) window.location.reload();
}

/** Open the call socket, then the media of the call's transport, within the start timeout. */
async function connect(boot, stream, context) {
  const call = {id: boot.call_id, token: boot.client_token, transport: boot.transport,
    limits: boot.limits || {}, started: false, connectedAt: 0, ending: null, ended: false,
    pc: null, capture: null, player: null, endTimer: null, stream, context,
    iceRestarts: 0, peerRestarts: 0, mediaRecoveries: 0, recovering: false, muteMessages: [],
    lastMute: "session.input_audio.unmute"};
  app.call = call;
  call.socket = new CallSocket(socketUrl(boot.ws_path), call.token, {
    onAudio: (data) => { if (call.player && !call.ending) call.player.play(data); },
    onEvent: (event) => onCallEvent(call, event),
    onForceEnd: (reason) => ending(call, reason),
    onDown: () => showBanner("The connection to your computer dropped. Reconnecting…", "net"),
    onAuth: (_limits, again) => { if (again) hideBanner("net"); },
    onGone: (code, reason) => ended(call, code === 4000 && reason ? reason
      : call.ending || "browser_disconnect"),
  });
  Object.assign(call.limits, await call.socket.connect());
  call.connectedAt = Date.now();
  if (call.ended) return;
  if (call.transport === "webrtc") {
    await startWebrtc(call, stream, context);
  } else {
    await startRelay(call, stream, context);
  }
  const deadline = Number(call.limits.startup_timeout_ms || settings.startup_timeout_ms) || 30000;
  call.startTimer = setTimeout(() => {
    if (!call.started && !call.ended) startFailed(new Error("the audio did not start in time"));
  }, deadline);
}

/** Relay: PCM16 frames over the call socket both ways; call.started once audio flows. */
async function startRelay(call, stream, context) {
  if (!context) throw new Error("this browser cannot play audio");
  call.player = await Pcm16Player.open(context, showLevel);
  const speech = new SpeechDetector((state) => {
    call.socket.sendEvent({type: "vad", state}); // keeps the gateway's idle timer fed
    if (state === "speech_started") hideBanner("idle");
  });
  call.capture = await MicCapture.open(context, stream, {
    onFrame: (frame) => {
      if (call.ending || !micOpen()) return; // muted: nothing leaves the page
      if (call.socket.sendAudio(frame) && !call.started) started(call);
    },
    onLevel: (rms, ms) => { showLevel(rms); if (call.started) speech.update(rms, ms); },
  }, {muted: !micOpen()});
  if (call.ended) teardown(call);
}

/** WebRTC: the offer goes to the gateway (never to OpenAI directly); started once connected. */
async function startWebrtc(call, stream, context) {
  if (context) { // only for the level meter: the audio itself goes over WebRTC
    call.capture = await MicCapture.open(context, stream, {onLevel: showLevel}, {frames: false});
  }
  const pc = openPeer(call, stream);
  const answer = await sendOffer(call, pc);
  if (!answer.ok) {
    // The gateway's message is already a sentence for people: show it as it is.
    throw Object.assign(new Error(answer.message), {sentence: true});
  }
}

/** A new peer connection for the call: the microphone track, the data channel, the handlers. */
function openPeer(call, stream) {
  const pc = new RTCPeerConnection();
  call.pc = pc;
  pc.ontrack = (event) => {
    if (call.pc !== pc) return;
    ui.audio.srcObject = event.streams[0] || new MediaStream([event.track]);
    ui.audio.play().catch(() => {});
  };
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  const channel = pc.createDataChannel("oai-events"); // transcripts come via the call socket
  call.channel = channel;
  call.lastMute = "session.input_audio.unmute"; // a new session listens until told otherwise
  channel.onopen = () => {
    if (call.channel !== channel) return;
    if (!micOpen() && settings.data_channel_mute) {
      sendMuteMessage(call, true);
    }
  };
  pc.onconnectionstatechange = () => onPeerState(call, pc);
  return pc;
}

/** Offer (a fresh one, or an ICE restart) through the gateway; {ok, message}. */
async function sendOffer(call, pc, {iceRestart = false} = {}) {
  await pc.setLocalDescription(await pc.createOffer(iceRestart ? {iceRestart: true} : {}));
  const answer = await postJson("/api/call/webrtc",
    {call_id: call.id, client_token: call.token, sdp: pc.localDescription.sdp}, 30000);
  if (!answer.ok || !answer.body.sdp) {
    return {ok: false, message: errorMessage(answer, "The voice service did not answer.")};
  }
  if (call.pc !== pc || pc.signalingState === "closed") return {ok: false, message: "replaced"};
  await pc.setRemoteDescription({type: "answer", sdp: answer.body.sdp});
  return {ok: true, message: ""};
}

/** The peer's connectionState: start, recover, or give up. */
function onPeerState(call, pc) {
  if (call.pc !== pc || call.ended) return;
  const state = pc.connectionState;
  if (state === "connected") {
    hideBanner("media");
    if (!call.started) started(call);
    if (call.onConnected) call.onConnected();
  } else if (state === "disconnected" && call.started) {
    clearTimeout(call.settleTimer);
    call.settleTimer = setTimeout(() => {
      if (call.pc === pc && pc.connectionState === "disconnected") recoverMedia(call);
    }, DISCONNECT_SETTLE_MS);
  } else if (state === "failed") {
    if (call.started) recoverMedia(call);
    else startFailed(new Error("the audio connection failed"));
  }
}

/** Resolves true once call.pc is connected, false after ``ms``. */
function waitConnected(call, ms) {
  if (call.pc && call.pc.connectionState === "connected") return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { call.onConnected = null; resolve(false); }, ms);
    call.onConnected = () => { clearTimeout(timer); call.onConnected = null; resolve(true); };
  });
}

/**
 * The audio connection dropped: say "Reconnecting…", try an ICE restart on the same peer
 * (unless the backend answers each offer with a new upstream session: settings.ice_restart),
 * then new peer connections, until reconnect_grace_ms has passed; then end with network_lost.
 */
async function recoverMedia(call) {
  if (call.recovering || call.ending || call.ended) return;
  call.recovering = true;
  const grace = Number(settings.reconnect_grace_ms) || 8000;
  const deadline = Date.now() + grace;
  setState("in_call", "Reconnecting…");
  showBanner("The audio connection dropped. Reconnecting…", "media");
  tg.haptic("warning");
  const giveUp = setTimeout(() => {
    if (call.recovering && !call.ended) hangUp("network_lost");
  }, grace);
  const left = () => deadline - Date.now();
  let back = false;
  try {
    if (settings.ice_restart !== false) { // not when each offer reaches a new upstream session
      call.iceRestarts += 1;
      pcRestartIce(call.pc);
      const restarted = await sendOffer(call, call.pc, {iceRestart: true}).catch(() => ({}));
      const step = Math.min(RECOVERY_STEP_MS, left());
      back = Boolean(restarted.ok) && await waitConnected(call, step);
    }
    while (!back && left() > 0 && !call.ending && !call.ended) {
      call.peerRestarts += 1;
      const old = call.pc;
      const pc = openPeer(call, call.stream);
      if (old) old.close();
      const offered = await sendOffer(call, pc).catch(() => ({}));
      back = Boolean(offered.ok) && await waitConnected(call, Math.min(RECOVERY_STEP_MS, left()));
      if (!back && left() > 0) await new Promise((r) => setTimeout(r, Math.min(1000, left())));
    }
  } finally {
    clearTimeout(giveUp);
    call.recovering = false;
  }
  if (back && !call.ending && !call.ended) {
    call.mediaRecoveries += 1;
    hideBanner("media");
    setState("in_call", "Connected again. Speak any time.");
    applyMic();
    tg.haptic("success");
  } else if (!call.ending && !call.ended) {
    hangUp("network_lost");
  }
}

/** RTCPeerConnection.restartIce where the browser has it. */
function pcRestartIce(pc) {
  if (pc && typeof pc.restartIce === "function") pc.restartIce();
}

/** Audio flows: tell the gateway (durably), keep the screen on, guard against closing. */
function started(call) {
  call.started = true;
  clearTimeout(call.startTimer);
  call.socket.sendEvent({type: "call.started"}, {durable: true});
  setState("in_call", "Connected. Speak any time.");
  applyMic();
  tg.confirmClosing(true);
  tg.backButton(async () => {
    if (await tg.confirm("Hang up the call?")) hangUp("user_hangup");
  });
  tg.haptic("success");
  holdWakeLock();
  tick();
  if (!app.ticker) app.ticker = setInterval(tick, 1000);
}

/** Starting failed after bootstrap: tell the gateway why (durably), then offer a retry. */
async function startFailed(err, text) {
  const call = app.call;
  if (!call || call.ended || call.ending) return;
  call.ending = "call_start_failed";
  let message = (err && err.message) || "unknown error";
  if (err instanceof CallSocketError) message = "could not join the call on your computer";
  const events = [...call.socket.unacknowledged(), {type: "call.start_failed",
    message: message.slice(0, 400), at: new Date().toISOString()}];
  teardown(call);
  failed(text || (err && err.sentence ? message : `The call could not start: ${message}.`),
    {retry: true});
  await postJson("/api/call/finalize", {call_id: call.id, client_token: call.token,
    reason: "call_start_failed", events}, REQUEST_TIMEOUT_MS);
}

// -- during the call ------------------------------------------------------------------------

/** Events the gateway relays: transcripts, warnings, the end. */
function onCallEvent(call, event) {
  const seconds = Math.round((Number(event.remaining_ms) || 0) / 1000);
  switch (event.type) {
    case "user.transcript.final":
    case "assistant.transcript.final":
      hideBanner("idle");
      if (event.text) addLine(event.type.startsWith("user") ? "user" : "assistant", event.text);
      break;
    case "transcript.unavailable":
      addLine("note", `Transcript unavailable: ${event.reason || "no reason given"}`);
      break;
    case "call.error":
      addLine("note", `Problem: ${event.message || event.code || "unknown error"}`);
      break;
    case "call.warning":
      showBanner(`The call ends in about ${seconds} seconds: it is reaching its time limit.`,
        "time");
      tg.haptic("warning");
      break;
    case "call.idle_warning":
      showBanner(`Nobody has spoken for a while. The call ends in about ${seconds} seconds ` +
        "unless someone speaks.", "idle");
      tg.haptic("warning");
      break;
    case "delegation.started":
      onDelegation(event, "started");
      break;
    case "delegation.progress":
      onDelegation(event, "progress");
      break;
    case "delegation.finished":
      onDelegation(event, "finished");
      break;
    case "call.ended":
      ended(call, event.reason);
      break;
    default:
      break;
  }
}

/**
 * What the agent is doing: "Asking Codex: <question>" while a delegation runs (with its latest
 * progress under it), then "Codex answered" (or "Codex could not answer") for a few seconds.
 */
function onDelegation(event, phase) {
  const id = String(event.delegation_id || "");
  const running = app.delegations;
  clearTimeout(app.activityTimer);
  if (phase === "started") {
    running.set(id, String(event.question || "").trim());
  } else if (phase === "progress") {
    if (!running.has(id)) running.set(id, "");
    showActivity(askingText(running.get(id)), String(event.text || "").slice(0, 200));
    return;
  } else {
    running.delete(id);
    if (!running.size) {
      showActivity(event.ok === false ? "Codex could not answer" : "Codex answered");
      app.activityTimer = setTimeout(() => showActivity(""), ANSWERED_SHOWN_MS);
      return;
    }
  }
  const latest = Array.from(running.values()).pop();
  showActivity(askingText(latest));
}

/** "Asking Codex: …" for a question (shortened), or without one. */
function askingText(question) {
  const text = question && question.length > 140 ? `${question.slice(0, 139)}…` : question;
  return text ? `Asking Codex: ${text}` : "Asking Codex…";
}

/** The gateway (or this page) decided to end: stop sending, wait briefly for last words. */
function ending(call, reason) {
  if (call.ended) return;
  call.ending = call.ending || reason || "user_hangup";
  if (call.capture) call.capture.stop();
  call.capture = null;
  setState("ending", "Ending the call…");
  clearTimeout(call.endTimer);
  const wait = (Number(call.limits.finalize_grace_ms) || 4000) + END_WAIT_SLACK_MS;
  call.endTimer = setTimeout(() => ended(call, call.ending), wait);
}

/**
 * Hang up from the page. With the socket up, events still in flight arrive during the
 * gateway's final grace; with it down, the unacknowledged ones go with a finalize request.
 */
async function hangUp(reason = "user_hangup") {
  if (app.abort) {
    app.abort.abort();
    return;
  }
  const call = app.call;
  if (!call || call.ended || call.ending) return;
  if (!call.started) {
    await startFailed(null, "You cancelled the call.");
    return;
  }
  ending(call, reason);
  const events = call.socket.connected ? [] : call.socket.unacknowledged();
  const path = events.length ? "/api/call/finalize" : "/api/call/hangup";
  const result = await postJson(path, {call_id: call.id, client_token: call.token, reason,
    events}, REQUEST_TIMEOUT_MS);
  if (result.status === 404) ended(call, call.ending);
}

/** Stop everything that belongs to this call (media, peer, socket, timers). */
function teardown(call) {
  clearTimeout(call.endTimer);
  clearTimeout(call.startTimer);
  clearTimeout(call.settleTimer);
  if (call.capture) call.capture.stop();
  if (call.player) call.player.stop();
  call.capture = call.player = null;
  if (call.pc) call.pc.close();
  call.pc = null;
  ui.audio.srcObject = null;
  call.socket.close();
  call.ended = true;
}

/** The call is over: say why, release everything, and offer what comes next. */
function ended(call, reason) {
  if (call.ended) return;
  teardown(call);
  app.endReason = reason || call.ending || "unknown";
  clearInterval(app.ticker);
  app.ticker = null;
  releaseWakeLock();
  tg.confirmClosing(false);
  tg.backButton(null);
  hideBanner();
  app.canRetry = !call.started; // a started call consumed the launch link
  app.delegations.clear();
  app.muted = app.talking = false;
  const sentence = endReasonText(app.endReason);
  setState("ended", sentence);
  if (call.started) showEndScreen(sentence);
  tg.haptic(app.endReason === "user_hangup" ? "success" : "warning");
}

/** The end screen: why the call ended, what happens next, and the way back to the chat. */
function showEndScreen(sentence) {
  ui.endReason.textContent = sentence;
  ui.end.hidden = false;
  ui.endTitle.focus({preventScroll: false}); // screen readers land on the end screen
  tg.mainButton("Back to the chat", backToChat);
}

/** Back to the chat: closing the Mini App shows the chat it was opened from. */
function backToChat(event) {
  if (event) event.preventDefault();
  if (!tg.close()) window.history.back();
}

/** Closing the page during a call: hand over what is not yet on disk, and end it. */
function onPageHide() {
  const call = app.call;
  if (!call || call.ended) return;
  const body = JSON.stringify({call_id: call.id, client_token: call.token,
    reason: "page_closed", events: call.socket.unacknowledged()});
  const blob = new Blob([body], {type: "application/json"});
  if (!(navigator.sendBeacon && navigator.sendBeacon("/api/call/finalize", blob))) {
    fetch("/api/call/finalize", {method: "POST", body: blob, keepalive: true,
      headers: {"Content-Type": "application/json"}}).catch(() => {});
  }
}

// -- wiring ---------------------------------------------------------------------------------

ui.start.addEventListener("click", () => { if (app.reconnect) reconnect(); else startCall(); });
ui.hangup.addEventListener("click", () => { hangUp("user_hangup"); });
ui.mute.addEventListener("click", toggleMute);
ui.pttMode.addEventListener("change", () => setPushToTalk(ui.pttMode.checked));
ui.talk.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  if (ui.talk.setPointerCapture) ui.talk.setPointerCapture(event.pointerId);
  holdToTalk(true);
});
for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
  ui.talk.addEventListener(name, () => holdToTalk(false));
}
ui.talk.addEventListener("keydown", (event) => {
  if ((event.key === " " || event.key === "Enter") && !event.repeat) {
    event.preventDefault();
    holdToTalk(true);
  }
});
ui.talk.addEventListener("keyup", (event) => {
  if (event.key === " " || event.key === "Enter") holdToTalk(false);
});
ui.talk.addEventListener("blur", () => holdToTalk(false));
ui.talk.addEventListener("contextmenu", (event) => event.preventDefault());
ui.backToChat.addEventListener("click", backToChat);
window.addEventListener("pagehide", onPageHide);
window.addEventListener("online", () => { if (app.call) app.call.socket.retryNow(); });
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") holdWakeLock();
});
tg.start();
if (!tg.initData) {
  showHelp("Open this page from Telegram.",
    ["Send /call to your bot and tap the button it sends; this page needs Telegram's sign-in."]);
}
setState("idle");
ui.start.disabled = !tg.initData;
