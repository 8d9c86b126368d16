"use strict";
/* bridgehost Mini App: the audio worklet (served at /miniapp/audio-worklet.js, loaded with
   audioWorklet.addModule). It runs on the audio rendering thread, so a busy page does not
   glitch the call.

   "bridgehost-capture": microphone → 24 kHz mono PCM16 frames of 40 ms, resampled here from the
   context's rate, posted to the page with the frame's level. While muted it posts no frames,
   only a level of 0. With {frames: false} it only reports levels (the WebRTC level meter).

   "bridgehost-playback": 24 kHz PCM16 frames from the page → the context's rate, through a
   small jitter buffer: playback starts once PREBUFFER_MS are queued, starts again the same way
   after running dry, and drops the oldest audio beyond MAX_BUFFER_MS rather than fall behind. */

const RELAY_RATE = 24000;
const FRAME_SAMPLES = 960; // 40 ms at 24 kHz
const PREBUFFER_MS = 80;
const MAX_BUFFER_MS = 1000;
const LEVEL_EVERY_MS = 80;

/** Streaming converter from one sample rate to another (box filter down, linear up). */
class Resampler {
  constructor(fromRate, toRate) {
    this.step = fromRate / toRate; // input samples per output sample
    this.pos = 0;
    this.last = 0;
    this.sum = 0;
    this.count = 0;
  }

  /** Convert one block; ``emit(sample)`` gets each output sample in order. */
  push(input, emit) {
    if (this.step >= 1) {
      for (let i = 0; i < input.length; i += 1) {
        this.sum += input[i];
        this.count += 1;
        this.pos += 1;
        if (this.pos >= this.step) {
          this.pos -= this.step;
          emit(this.sum / this.count);
          this.sum = 0;
          this.count = 0;
        }
      }
      return;
    }
    while (this.pos < input.length) {
      const index = Math.floor(this.pos);
      const frac = this.pos - index;
      const before = index === 0 ? this.last : input[index - 1];
      emit(before + (input[index] - before) * frac);
      this.pos += this.step;
    }
    this.pos -= input.length;
    this.last = input[input.length - 1];
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.frames = opts.frames !== false;
    this.muted = Boolean(opts.muted);
    this.resampler = new Resampler(sampleRate, RELAY_RATE);
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.fill = 0;
    this.energy = 0;
    this.levelSamples = 0;
    this.levelEvery = Math.round((sampleRate * LEVEL_EVERY_MS) / 1000);
    this.emit = (sample) => this.store(sample);
    this.port.onmessage = (event) => {
      const message = event.data || {};
      if (message.type === "mute") {
        this.muted = Boolean(message.muted);
        this.fill = 0; // never send half a frame of audio from before the mute
      } else if (message.type === "stop") {
        this.stopped = true;
      }
    };
  }

  store(sample) {
    const clamped = Math.max(-1, Math.min(1, sample));
    this.frame[this.fill] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    this.fill += 1;
    if (this.fill === FRAME_SAMPLES) {
      const buffer = this.frame.buffer;
      this.port.postMessage({type: "frame", data: buffer}, [buffer]);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.fill = 0;
    }
  }

  process(inputs) {
    if (this.stopped) return false;
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i += 1) this.energy += channel[i] * channel[i];
    this.levelSamples += channel.length;
    if (this.levelSamples >= this.levelEvery) {
      const rms = this.muted ? 0 : Math.sqrt(this.energy / this.levelSamples);
      this.port.postMessage({type: "level", rms, ms: (this.levelSamples / sampleRate) * 1000});
      this.energy = 0;
      this.levelSamples = 0;
    }
    if (this.frames && !this.muted) this.resampler.push(channel, this.emit);
    return true;
  }
}

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.capacity = Math.ceil((sampleRate * MAX_BUFFER_MS) / 1000);
    this.prebuffer = Math.ceil((sampleRate * PREBUFFER_MS) / 1000);
    this.ring = new Float32Array(this.capacity);
    this.read = 0;
    this.size = 0;
    this.playing = false;
    this.resampler = new Resampler(RELAY_RATE, sampleRate);
    this.energy = 0;
    this.levelSamples = 0;
    this.levelEvery = Math.round((sampleRate * LEVEL_EVERY_MS) / 1000);
    this.underruns = 0;
    this.dropped = 0;
    this.emit = (sample) => this.enqueue(sample);
    this.port.onmessage = (event) => {
      const message = event.data || {};
      if (message.type === "frame" && message.data) {
        const samples = new Int16Array(message.data, 0, message.data.byteLength >> 1);
        const floats = new Float32Array(samples.length);
        for (let i = 0; i < samples.length; i += 1) floats[i] = samples[i] / 0x8000;
        this.resampler.push(floats, this.emit);
      } else if (message.type === "flush") {
        this.size = 0;
        this.playing = false;
      } else if (message.type === "stop") {
        this.stopped = true;
      }
    };
  }

  enqueue(sample) {
    if (this.size === this.capacity) { // full: drop the oldest sample
      this.read = (this.read + 1) % this.capacity;
      this.size -= 1;
      this.dropped += 1;
    }
    this.ring[(this.read + this.size) % this.capacity] = sample;
    this.size += 1;
  }

  process(_inputs, outputs) {
    if (this.stopped) return false;
    const out = outputs[0][0];
    if (!this.playing && this.size >= this.prebuffer) this.playing = true;
    for (let i = 0; i < out.length; i += 1) {
      if (this.playing && this.size > 0) {
        out[i] = this.ring[this.read];
        this.read = (this.read + 1) % this.capacity;
        this.size -= 1;
      } else {
        if (this.playing) this.underruns += 1;
        this.playing = false;
        out[i] = 0;
      }
      this.energy += out[i] * out[i];
    }
    for (let c = 1; c < outputs[0].length; c += 1) outputs[0][c].set(out);
    this.levelSamples += out.length;
    if (this.levelSamples >= this.levelEvery) {
      this.port.postMessage({type: "level", rms: Math.sqrt(this.energy / this.levelSamples),
        buffered_ms: (this.size / sampleRate) * 1000, underruns: this.underruns,
        dropped: this.dropped});
      this.energy = 0;
      this.levelSamples = 0;
    }
    return true;
  }
}

registerProcessor("bridgehost-capture", CaptureProcessor);
registerProcessor("bridgehost-playback", PlaybackProcessor);
