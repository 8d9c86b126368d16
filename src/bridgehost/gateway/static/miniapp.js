"use strict";
// Placeholder behaviour: bootstrap only. The full call client replaces this file.
const settings = JSON.parse(document.getElementById("settings").textContent);
const statusLine = document.getElementById("status");
function initData() {
  const tg = window.Telegram && window.Telegram.WebApp;
  if (tg && tg.initData) return tg.initData;
  const hash = new URLSearchParams(location.hash.slice(1));
  return hash.get("tgWebAppData") || "";
}
document.getElementById("start").addEventListener("click", async () => {
  statusLine.textContent = "Connecting…";
  const response = await fetch("/api/call/bootstrap", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({launch_token: settings.launch_token, init_data: initData()}),
  });
  const body = await response.json();
  statusLine.textContent = response.ok ? "Connected." : body.error.message;
});
