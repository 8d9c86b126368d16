"use strict";
/* bridgehost Mini App: audio for the relay transport. The microphone becomes 24 kHz mono PCM16
   frames of 40 ms; frames received from the gateway are queued and played in order.

   Capture uses a ScriptProcessorNode: an AudioWorklet module must be loaded from a script URL,
   which the page's CSP (nonce scripts only) does not allow. For 40 ms voice frames the main
   thread is fast enough. */

const RELAY_RATE = 24000;
const FRAME_SAMPLES = 960; // 40 ms at 24 kHz
const MAX_PLAYBACK_LAG_S = 1.0; // drop queued audio that would play later than this

/** Streaming sample-rate converter to 24 kHz that emits Int16 frames of FRAME_SAMPLES. */
class Pcm16Encoder {
  constructor(inputRate, onFrame) {
    this.step = inputRate / RELAY_RATE; // input samples per output sample
    this.onFrame = onFrame;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.fill = 0;
    this.pos = 0; // position of the next output sample, in input samples, relative to chunk
    this.last = 0; // last input sample of the previous chunk (for interpolation)
    this.sum = 0;
    this.count = 0;
  }

  /** Feed a Float32Array of input samples. */
  push(input) {
    if (this.step >= 1) {
      // Downsampling: average the input samples of each output interval (a box filter).
      for (let i = 0; i < input.length; i += 1) {
        this.sum += input[i];
        this.count += 1;
        this.pos += 1;
        if (this.pos >= this.step) {
          this.pos -= this.step;
          this.emit(this.sum / this.count);
          this.sum = 0;
          this.count = 0;
        }
      }
      return;
    }
    // Upsampling: linear interpolation between neighbouring input samples.
    while (this.pos < input.length) {
      const index = Math.floor(this.pos);
      const frac = this.pos - index;
      const before = index === 0 ? this.last : input[index - 1];
      this.emit(before + (input[index] - before) * frac);
      this.pos += this.step;
    }
    this.pos -= input.length;
    this.last = input[input.length - 1];
  }

  emit(sample) {
    const clamped = Math.max(-1, Math.min(1, sample));
    this.frame[this.fill] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    this.fill += 1;
    if (this.fill === FRAME_SAMPLES) {
      this.onFrame(this.frame.buffer.slice(0));
      this.fill = 0;
    }
  }
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

/** Microphone → PCM16 frames (onFrame) and a level (onLevel, 0..1) per processed block. */
class MicCapture {
  constructor(context, stream, {onFrame, onLevel}) {
    this.context = context;
    this.source = context.createMediaStreamSource(stream);
    this.processor = context.createScriptProcessor(1024, 1, 1);
    this.mute = context.createGain();
    this.mute.gain.value = 0; // the processor must reach the destination to run; keep it silent
    const encoder = new Pcm16Encoder(context.sampleRate, onFrame);
    const blockMs = (1024 / context.sampleRate) * 1000;
    this.processor.onaudioprocess = (event) => {
      const data = event.inputBuffer.getChannelData(0);
      let energy = 0;
      for (let i = 0; i < data.length; i += 1) energy += data[i] * data[i];
      if (onLevel) onLevel(Math.sqrt(energy / data.length), blockMs);
      encoder.push(data);
    };
    this.source.connect(this.processor);
    this.processor.connect(this.mute);
    this.mute.connect(context.destination);
  }

  stop() {
    this.processor.onaudioprocess = null;
    for (const node of [this.source, this.processor, this.mute]) {
      try {
        node.disconnect();
      } catch (_err) {
        // already disconnected
      }
    }
  }
}

/** Plays PCM16 24 kHz frames back to back, without gaps or pile-ups. */
class Pcm16Player {
  constructor(context, onLevel) {
    this.context = context;
    this.onLevel = onLevel;
    this.output = context.createGain();
    this.output.connect(context.destination);
    this.nextTime = 0;
    this.sources = new Set();
  }

  /** Queue one frame (an ArrayBuffer of little-endian Int16 samples). */
  play(data) {
    const samples = new Int16Array(data, 0, Math.floor(data.byteLength / 2));
    if (!samples.length) return;
    const buffer = this.context.createBuffer(1, samples.length, RELAY_RATE);
    const channel = buffer.getChannelData(0);
    let energy = 0;
    for (let i = 0; i < samples.length; i += 1) {
      channel[i] = samples[i] / 0x8000;
      energy += channel[i] * channel[i];
    }
    if (this.onLevel) this.onLevel(Math.sqrt(energy / samples.length));
    const now = this.context.currentTime;
    if (this.nextTime < now + 0.02 || this.nextTime > now + MAX_PLAYBACK_LAG_S) {
      this.nextTime = now + 0.05; // (re)start with a small cushion against jitter
    }
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    source.onended = () => this.sources.delete(source);
    source.start(this.nextTime);
    this.sources.add(source);
    this.nextTime += buffer.duration;
  }

  stop() {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch (_err) {
        // not started yet or already stopped
      }
    }
    this.sources.clear();
    this.output.disconnect();
  }
}
