"use strict";
/* bridgehost Mini App: audio through the gateway's AudioWorklet module (miniapp-worklet.js,
   served at WORKLET_PATH and allowed for that one path by the page's CSP). In relay mode the
   microphone becomes 24 kHz mono PCM16 frames of 40 ms and frames from the gateway play through
   a small jitter buffer; in WebRTC mode the worklet only measures the microphone's level.
   Resampling happens in the worklet, off the main thread. */

const WORKLET_PATH = "/miniapp/audio-worklet.js";

/** Load the worklet module into a context, once per context. */
const workletLoads = new WeakMap();
function loadWorklet(context) {
  if (!context.audioWorklet) {
    return Promise.reject(new Error("this browser cannot process audio (no AudioWorklet)"));
  }
  if (!workletLoads.has(context)) {
    const load = context.audioWorklet.addModule(WORKLET_PATH).catch((err) => {
      workletLoads.delete(context);
      throw new Error(`the audio module did not load (${(err && err.message) || err})`);
    });
    workletLoads.set(context, load);
  }
  return workletLoads.get(context);
}

/** A tiny energy-based speech detector, so the gateway's idle timer sees someone talking. */
class SpeechDetector {
  constructor(onChange, {threshold = 0.02, startMs = 120, stopMs = 900} = {}) {
    this.onChange = onChange;
    this.threshold = threshold;
    this.startMs = startMs;
    this.stopMs = stopMs;
    this.speaking = false;
    this.loudMs = 0;
    this.quietMs = 0;
  }

  /** Feed one block's RMS level and its duration. */
  update(rms, ms) {
    if (rms >= this.threshold) {
      this.loudMs += ms;
      this.quietMs = 0;
      if (!this.speaking && this.loudMs >= this.startMs) {
        this.speaking = true;
        this.onChange("speech_started");
      }
    } else {
      this.quietMs += ms;
      this.loudMs = 0;
      if (this.speaking && this.quietMs >= this.stopMs) {
        this.speaking = false;
        this.onChange("speech_stopped");
      }
    }
  }
}

/** Disconnect audio nodes, ignoring ones already disconnected. */
function disconnectAll(nodes) {
  for (const node of nodes) {
    try {
      node.disconnect();
    } catch (_err) {
      // already disconnected
    }
  }
}

/**
 * Microphone → PCM16 frames (onFrame(ArrayBuffer)) and levels (onLevel(rms, ms)).
 * Create with ``await MicCapture.open(context, stream, handlers, {frames})``.
 */
class MicCapture {
  constructor(context, stream, node, handlers) {
    this.context = context;
    this.source = context.createMediaStreamSource(stream);
    this.node = node;
    this.silent = context.createGain();
    this.silent.gain.value = 0; // the node must reach the destination to be pulled; keep it silent
    node.port.onmessage = (event) => {
      const message = event.data || {};
      if (message.type === "frame" && handlers.onFrame) handlers.onFrame(message.data);
      else if (message.type === "level" && handlers.onLevel) handlers.onLevel(message.rms, message.ms);
    };
    this.source.connect(node);
    node.connect(this.silent);
    this.silent.connect(context.destination);
  }

  static async open(context, stream, handlers, {frames = true, muted = false} = {}) {
    await loadWorklet(context);
    const node = new AudioWorkletNode(context, "bridgehost-capture", {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: {frames, muted}});
    return new MicCapture(context, stream, node, handlers || {});
  }

  /** Stop (true) or resume (false) producing frames. */
  setMuted(muted) {
    this.node.port.postMessage({type: "mute", muted: Boolean(muted)});
  }

  stop() {
    this.node.port.onmessage = null;
    this.node.port.postMessage({type: "stop"});
    disconnectAll([this.source, this.node, this.silent]);
  }
}

/** Plays PCM16 24 kHz frames through the worklet's jitter buffer. Create with ``open``. */
class Pcm16Player {
  constructor(context, node, onLevel) {
    this.context = context;
    this.node = node;
    this.stats = {bufferedMs: 0, underruns: 0, dropped: 0};
    node.port.onmessage = (event) => {
      const message = event.data || {};
      if (message.type !== "level") return;
      this.stats = {bufferedMs: message.buffered_ms, underruns: message.underruns,
        dropped: message.dropped};
      if (onLevel && message.rms > 0.001) onLevel(message.rms);
    };
    node.connect(context.destination);
  }

  static async open(context, onLevel) {
    await loadWorklet(context);
    const node = new AudioWorkletNode(context, "bridgehost-playback", {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1]});
    return new Pcm16Player(context, node, onLevel);
  }

  /** Queue one frame (an ArrayBuffer of little-endian Int16 samples). */
  play(data) {
    if (data.byteLength < 2) return;
    this.node.port.postMessage({type: "frame", data}, [data]);
  }

  stop() {
    this.node.port.onmessage = null;
    this.node.port.postMessage({type: "stop"});
    disconnectAll([this.node]);
  }
}
