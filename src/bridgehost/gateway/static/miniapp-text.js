"use strict";
/* bridgehost Mini App: the words the page shows (end reasons, microphone help). */

/** Why a call ended, as a sentence a person understands. Keys are the gateway's reason codes. */
const END_REASONS = {
  user_hangup: "You hung up.",
  page_closed: "The call ended because the page was closed.",
  idle_timeout: "The call ended because nobody spoke for a while.",
  max_call_duration_reached: "The call reached its time limit.",
  daily_budget_exhausted: "Today's call time is used up, so the call ended. It resets at midnight.",
  telegram_hangup: "The call was hung up from Telegram (/hangup).",
  operator_hangup: "The call was hung up on the computer (bridgectl).",
  gateway_stop: "The call service on your computer stopped, so the call ended.",
  gateway_restart: "The call service on your computer restarted, so the call ended.",
  call_start_timeout: "The call took too long to start.",
  call_launch_timeout: "The call was not joined in time.",
  call_start_failed: "The call could not start.",
  browser_disconnect: "The connection to your computer was lost.",
  network_lost: "The connection to your computer was lost.",
  microphone_denied: "The call ended because the microphone is not available.",
  call_auth_rate_limited: "The call ended after repeated failed reconnects.",
  backend_failed: "The voice service stopped, so the call ended.",
  backend_ended: "The voice service ended the call.",
};

/** The sentence for an end reason; unknown codes still say something useful. */
function endReasonText(reason) {
  if (reason && Object.prototype.hasOwnProperty.call(END_REASONS, reason)) {
    return END_REASONS[reason];
  }
  return reason ? `The call ended (${String(reason).replace(/_/g, " ")}).` : "The call ended.";
}

/** How to give Telegram the microphone back, per client family. */
const MIC_RECOVERY = {
  android: "Android: open Settings → Apps → Telegram → Permissions and allow Microphone.",
  ios: "iPhone or iPad: open Settings → Telegram and switch on Microphone.",
  desktop: "Desktop: allow Telegram to use the microphone in your system's privacy settings " +
    "(macOS: System Settings → Privacy & Security → Microphone; Windows: Settings → " +
    "Privacy → Microphone).",
  web: "Telegram Web: click the lock or settings icon next to the address and allow the " +
    "microphone for this site.",
};

/** Which MIC_RECOVERY entry fits a Telegram platform name (tdesktop, android, ios, weba, …). */
function platformFamily(platform) {
  const name = String(platform || "").toLowerCase();
  if (name.startsWith("android")) return "android";
  if (name === "ios") return "ios";
  if (["tdesktop", "macos", "unigram"].includes(name)) return "desktop";
  if (name.startsWith("web")) return "web";
  return "";
}

/** Title and detail lines for a getUserMedia failure, for the page's help box. */
function microphoneHelp(error, platform) {
  const name = error && error.name;
  let title;
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    title = "No microphone was found. Connect or enable one, then try again.";
  } else if (name === "NotReadableError" || name === "AbortError") {
    title = "The microphone is busy or failed. Close other apps using it, then try again.";
  } else if (name === "Unsupported") {
    title = "This Telegram version cannot use the microphone here. Update Telegram, then " +
      "send /call again.";
    return {title, lines: []};
  } else {
    title = "Telegram was not allowed to use the microphone.";
  }
  const family = platformFamily(platform);
  const lines = family ? [MIC_RECOVERY[family]] : Object.values(MIC_RECOVERY);
  lines.push("Then close this window and send /call in Telegram again.");
  return {title, lines};
}
