"use strict";
/* bridgehost Mini App: Telegram glue. Works with telegram-web-app.js, and without it (tests,
   a blocked CDN) from the launch parameters Telegram puts in the URL hash. */

/**
 * The launch parameters in the URL hash, parsed as telegram-web-app.js does: both the
 * "#k=v&…" and "#path?k=v&…" forms, "+" read as a space, one level of percent-decoding.
 */
function parseLaunchParams(hash) {
  let text = String(hash || "").replace(/^#/, "");
  const query = text.indexOf("?");
  if (query >= 0) text = text.slice(query + 1);
  const params = {};
  for (const part of text.split("&")) {
    if (!part) continue;
    const cut = part.indexOf("=");
    const key = cut >= 0 ? part.slice(0, cut) : part;
    const value = cut >= 0 ? part.slice(cut + 1) : "";
    try {
      params[decodeURIComponent(key.replace(/\+/g, " "))] =
        decodeURIComponent(value.replace(/\+/g, " "));
    } catch (_err) {
      // A malformed %-sequence: skip that pair, as Telegram's script does.
    }
  }
  return params;
}

/** Thin, defensive wrapper: every Telegram call is optional (older clients lack some). */
class TelegramHost {
  constructor(win) {
    this.webApp = (win.Telegram && win.Telegram.WebApp) || null;
    this.launch = parseLaunchParams(win.location.hash);
    this.backHandler = null;
    this.mainHandler = null;
  }

  /** The raw init data string for the server: the script's, else the hash's. */
  get initData() {
    return (this.webApp && this.webApp.initData) || this.launch.tgWebAppData || "";
  }

  /** The client platform (android, ios, tdesktop, weba, …), or "". */
  get platform() {
    const platform = this.webApp && this.webApp.platform;
    return platform && platform !== "unknown" ? platform : this.launch.tgWebAppPlatform || "";
  }

  call(name, ...args) {
    const fn = this.webApp && this.webApp[name];
    if (typeof fn !== "function") return undefined;
    try {
      return fn.apply(this.webApp, args);
    } catch (_err) {
      return undefined; // e.g. "method not supported" on old clients
    }
  }

  /** Tell Telegram the page is ready; take the full height; follow theme changes. */
  start(onTheme) {
    this.call("ready");
    this.call("expand");
    this.applyTheme();
    if (this.webApp && typeof this.webApp.onEvent === "function") {
      this.webApp.onEvent("themeChanged", () => {
        this.applyTheme();
        if (onTheme) onTheme();
      });
    }
  }

  /**
   * Theme colours: telegram-web-app.js sets the --tg-theme-* variables itself; without it we
   * set them from the hash's tgWebAppThemeParams. Either way the header follows the page.
   */
  applyTheme() {
    const root = document.documentElement;
    let params = this.webApp && this.webApp.themeParams;
    if (!this.webApp || !params || !Object.keys(params).length) {
      try {
        params = JSON.parse(this.launch.tgWebAppThemeParams || "{}");
      } catch (_err) {
        params = {};
      }
      for (const [key, value] of Object.entries(params)) {
        if (/^[a-z_]+$/.test(key) && /^#[0-9a-fA-F]{3,8}$/.test(String(value))) {
          root.style.setProperty(`--tg-theme-${key.replace(/_/g, "-")}`, value);
        }
      }
    }
    const scheme = (this.webApp && this.webApp.colorScheme) || "";
    if (scheme === "dark" || scheme === "light") root.style.setProperty("color-scheme", scheme);
    this.call("setHeaderColor", "bg_color");
    this.call("setBackgroundColor", "bg_color");
  }

  /** Ask before the Mini App is closed (during a call only). */
  confirmClosing(on) {
    this.call(on ? "enableClosingConfirmation" : "disableClosingConfirmation");
  }

  /** Show Telegram's back button with a handler, or hide it (handler null). */
  backButton(handler) {
    const button = this.webApp && this.webApp.BackButton;
    if (!button) return;
    if (this.backHandler && button.offClick) button.offClick(this.backHandler);
    this.backHandler = handler;
    if (handler) {
      if (button.onClick) button.onClick(handler);
      if (button.show) button.show();
    } else if (button.hide) {
      button.hide();
    }
  }

  /** Show Telegram's main (bottom) button with a label and handler, or hide it. */
  mainButton(text, handler) {
    const button = this.webApp && this.webApp.MainButton;
    if (!button) return;
    if (this.mainHandler && button.offClick) button.offClick(this.mainHandler);
    this.mainHandler = handler;
    if (handler) {
      if (button.setText) button.setText(text);
      if (button.onClick) button.onClick(handler);
      if (button.show) button.show();
    } else if (button.hide) {
      button.hide();
    }
  }

  /** Ask the person to confirm; falls back to window.confirm outside Telegram. */
  confirm(message) {
    return new Promise((resolve) => {
      if (this.webApp && typeof this.webApp.showConfirm === "function") {
        try {
          this.webApp.showConfirm(message, (ok) => resolve(Boolean(ok)));
          return;
        } catch (_err) {
          // fall through
        }
      }
      resolve(window.confirm(message));
    });
  }

  /** A short haptic cue (success, warning, error) where the client supports it. */
  haptic(kind) {
    const feedback = this.webApp && this.webApp.HapticFeedback;
    if (feedback && typeof feedback.notificationOccurred === "function") {
      try {
        feedback.notificationOccurred(kind);
      } catch (_err) {
        // not supported
      }
    }
  }

  /** Close the Mini App (inside Telegram); false when there is nothing to close. */
  close() {
    if (!this.webApp || typeof this.webApp.close !== "function") return false;
    this.call("close");
    return true;
  }
}
