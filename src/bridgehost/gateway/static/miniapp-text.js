"use strict";
/* bridgehost Mini App: the words the page shows (end reasons come from the gateway). */

/** Why a call ended, as sentences a person understands, keyed by the gateway's reason codes.
 * The gateway embeds them in the page's settings (``end_reasons``): one list, on the server. */
let END_REASONS = null;

/** The sentence for an end reason; unknown codes still say something useful. */
function endReasonText(reason) {
  if (END_REASONS === null) {
    const element = document.getElementById("settings");
    const parsed = JSON.parse((element && element.textContent) || "{}");
    END_REASONS = parsed.end_reasons || {};
  }
  if (reason && Object.prototype.hasOwnProperty.call(END_REASONS, reason)) {
    return END_REASONS[reason];
  }
  if (!reason) return END_REASONS.unknown || "";
  return `The call ended (${String(reason).replace(/_/g, " ")}).`;
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
