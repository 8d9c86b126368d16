"use strict";
/* bridgehost Mini App: talking to the gateway. postJson for the HTTP routes; CallSocket for
   /ws/call, which authenticates with the call's client token, numbers the events it sends,
   keeps the durable ones until the gateway acknowledges them (they are then on disk), and
   reconnects a dropped socket with a bounded backoff and the same token, without touching the
   media session. */

const SOCKET_AUTH_TIMEOUT_MS = 10000;
const RECONNECT_DELAYS_MS = [250, 500, 1000, 1500, 2000, 2000];
const MAX_BUFFERED_AUDIO_BYTES = 64 * 1024; // skip audio frames rather than pile up latency
// 4000 call ended, 4004 unknown call, 4006 call ending, 4008 too many failures: never retry.
const TERMINAL_CLOSE_CODES = new Set([4000, 4004, 4006, 4008]);

class CallSocketError extends Error {
  constructor(code, reason) {
    super(`call socket closed (${code}${reason ? ` ${reason}` : ""})`);
    this.name = "CallSocketError";
    this.code = code;
    this.reason = reason;
  }
}

class CallSocket {
  /**
   * @param {string} url ws(s)://…/ws/call?call_id=…
   * @param {string} token the call's client token
   * @param {object} handlers onAuth(call, again), onEvent(event), onAudio(buffer),
   *   onForceEnd(reason), onDown(), onGone(code, reason): all optional
   */
  constructor(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.handlers = handlers || {};
    this.ws = null;
    this.authed = false;
    this.everAuthed = false;
    this.stopped = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> durable event not yet acknowledged
    this.stats = {reconnects: 0, eventsSent: 0, eventsAcked: 0, audioSent: 0, audioReceived: 0,
      audioBytesReceived: 0, audioSkipped: 0};
    this.firstAuth = null;
  }

  /** Authenticated and open: frames can be sent. */
  get connected() {
    return Boolean(this.ws && this.authed && this.ws.readyState === WebSocket.OPEN);
  }

  /** Open and authenticate; resolves with the call limits of call.auth.ok. */
  connect() {
    return new Promise((resolve, reject) => {
      this.firstAuth = {resolve, reject};
      this.open();
    });
  }

  open() {
    this.retryTimer = null;
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.authed = false;
    const authTimer = setTimeout(() => ws.close(), SOCKET_AUTH_TIMEOUT_MS);
    ws.onopen = () => ws.send(JSON.stringify({type: "call.auth", token: this.token}));
    ws.onmessage = (message) => {
      if (this.ws !== ws) return;
      if (typeof message.data !== "string") {
        if (this.authed) {
          this.stats.audioReceived += 1;
          this.stats.audioBytesReceived += message.data.byteLength;
          this.emit("onAudio", message.data);
        }
        return;
      }
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch (_err) {
        return;
      }
      if (frame && frame.type === "call.auth.ok") clearTimeout(authTimer);
      this.onFrame(frame || {});
    };
    ws.onclose = (event) => {
      clearTimeout(authTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      this.authed = false;
      this.onClosed(event.code, event.reason);
    };
  }

  onFrame(frame) {
    switch (frame.type) {
      case "call.auth.ok": {
        const again = this.everAuthed;
        this.authed = true;
        this.everAuthed = true;
        this.attempt = 0;
        if (again) this.stats.reconnects += 1;
        for (const [id, event] of this.pending) this.transmit(id, event);
        this.emit("onAuth", frame.call || {}, again);
        if (this.firstAuth) {
          this.firstAuth.resolve(frame.call || {});
          this.firstAuth = null;
        }
        break;
      }
      case "call.event.ack":
        if (this.pending.delete(frame.id)) this.stats.eventsAcked += 1;
        break;
      case "error":
        // A rejected event will never be accepted: do not resend it.
        if (frame.id !== undefined && frame.id !== null) this.pending.delete(frame.id);
        break;
      case "call.event":
        if (frame.event) this.emit("onEvent", frame.event);
        break;
      case "call.force_end":
        this.emit("onForceEnd", frame.reason || "");
        break;
      default:
        break;
    }
  }

  onClosed(code, reason) {
    if (this.stopped) return;
    const terminal = TERMINAL_CLOSE_CODES.has(code) || (code === 4001 && reason === "unauthorized");
    if (terminal || this.attempt >= RECONNECT_DELAYS_MS.length) {
      if (this.firstAuth) {
        this.firstAuth.reject(new CallSocketError(code, reason));
        this.firstAuth = null;
      } else {
        this.emit("onGone", code, terminal ? reason : "reconnect_failed");
      }
      this.stopped = true;
      return;
    }
    if (this.everAuthed) this.emit("onDown");
    this.retryTimer = setTimeout(() => this.open(), RECONNECT_DELAYS_MS[this.attempt]);
    this.attempt += 1;
  }

  /** The network came back: skip the rest of the current backoff delay. */
  retryNow() {
    if (this.retryTimer === null || this.stopped) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  emit(name, ...args) {
    const handler = this.handlers[name];
    if (typeof handler === "function") handler(...args);
  }

  transmit(id, event) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify({type: "call.event", id, event}));
    this.stats.eventsSent += 1;
    return true;
  }

  /** Send an event; a durable one is kept (and resent) until acknowledged. */
  sendEvent(event, {durable = false} = {}) {
    const id = this.nextId;
    this.nextId += 1;
    const stamped = {...event, at: new Date().toISOString()};
    if (durable) this.pending.set(id, stamped);
    this.transmit(id, stamped);
    return id;
  }

  /** Send one audio frame; false when the socket is down or congested. */
  sendAudio(buffer) {
    if (!this.connected) return false;
    if (this.ws.bufferedAmount > MAX_BUFFERED_AUDIO_BYTES) {
      this.stats.audioSkipped += 1;
      return false;
    }
    this.ws.send(buffer);
    this.stats.audioSent += 1;
    return true;
  }

  /** Durable events the gateway has not acknowledged yet (for the finalize request). */
  unacknowledged() {
    return Array.from(this.pending.values());
  }

  /** Stop for good: no reconnects. */
  close() {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000, "done");
      } catch (_err) {
        // already closing
      }
    }
  }
}

// -- JSON requests --------------------------------------------------------------------------

/** POST JSON; resolves {ok, status, body, retryAfter}; status 0 when the network failed. */
async function postJson(path, payload, timeoutMs, signal) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  if (signal) signal.addEventListener("abort", () => controller.abort());
  try {
    const response = await fetch(path, {method: "POST", cache: "no-store",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload),
      signal: controller.signal});
    const body = await response.json().catch(() => ({}));
    return {ok: response.ok, status: response.status, body: body || {},
      retryAfter: Number(response.headers.get("Retry-After")) || 0};
  } catch (_err) {
    return {ok: false, status: 0, body: {}, aborted: Boolean(signal && signal.aborted)};
  } finally {
    clearTimeout(timer);
  }
}

/** The server's one-sentence error message, or ``fallback``. */
function errorMessage(result, fallback) {
  const error = result.body && result.body.error;
  return (error && error.message) || fallback;
}

/** The ws(s):// URL of a gateway path, from the page's own origin. */
function socketUrl(path) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}
