"use strict";
/* bridgehost Mini App: the page's elements and small DOM helpers (banner, help box, transcript
   lines, audio level, clock text). Everything is set with textContent: nothing is parsed as
   HTML. */

const byId = (id) => document.getElementById(id);
const ui = {
  start: byId("start"), hangup: byId("hangup"), status: byId("status"), banner: byId("banner"),
  help: byId("help"), helpTitle: byId("help-title"), helpLines: byId("help-lines"),
  transcript: byId("transcript"), clock: byId("clock"), elapsed: byId("elapsed"),
  remaining: byId("remaining"), orb: byId("orb"), audio: byId("remote"),
  transcriptBox: byId("transcript-box"), mute: byId("mute"), talk: byId("talk"),
  pttOption: byId("ptt-option"), pttMode: byId("ptt-mode"), activity: byId("activity"),
  activityText: byId("activity-text"), activityDetail: byId("activity-detail"),
  end: byId("end"), endTitle: byId("end-title"), endReason: byId("end-reason"),
  backToChat: byId("back-to-chat"),
};

/** A banner above the transcript; ``kind`` lets one kind be hidden without hiding another. */
function showBanner(text, kind = "warning") {
  ui.banner.textContent = text;
  ui.banner.dataset.kind = kind;
  ui.banner.hidden = false;
}

/** Hide the banner (only if it shows ``kind``, when given). */
function hideBanner(kind) {
  if (!kind || ui.banner.dataset.kind === kind) ui.banner.hidden = true;
}

/** The help box: a title and a list of steps. */
function showHelp(title, lines) {
  ui.helpTitle.textContent = title;
  ui.helpLines.replaceChildren(...lines.map((line) => {
    const item = document.createElement("li");
    item.textContent = line;
    return item;
  }));
  ui.help.hidden = false;
}

/** One transcript line: role "user", "assistant" or "note". */
function addLine(role, text) {
  const item = document.createElement("li");
  item.className = `line ${role}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : role === "assistant" ? "Agent" : "";
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = text;
  if (who.textContent) item.append(who);
  item.append(what);
  ui.transcript.append(item);
  // The newest line in view: the box scrolls, and so does the page if the box is off screen.
  ui.transcriptBox.scrollTop = ui.transcriptBox.scrollHeight;
  item.scrollIntoView({block: "nearest"});
}

/** What the agent is doing (a delegation to Codex), or nothing (text ""). */
function showActivity(text, detail = "") {
  ui.activityText.textContent = text;
  ui.activityDetail.textContent = detail;
  ui.activity.hidden = !text;
}

/** The Mute button's label and state (its accessible name is its text). */
function showMuted(muted) {
  ui.mute.textContent = muted ? "Unmute" : "Mute";
  ui.mute.setAttribute("aria-pressed", String(Boolean(muted)));
}

/** Milliseconds as m:ss. */
function formatMs(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

/** Drive the orb's pulse from an RMS level (throttled). */
let lastLevelAt = 0;
function showLevel(rms) {
  const now = performance.now();
  if (now - lastLevelAt < 80) return;
  lastLevelAt = now;
  ui.orb.style.setProperty("--level", Math.min(1, rms * 6).toFixed(2));
}
