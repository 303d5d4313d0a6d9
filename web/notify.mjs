// The completion-notification offer of <smartcat-uploader> (element.mjs gives it a region in its shadow root and
// every card's view model). Once an upload's view says offer_notification (a long wait, still going), it offers to
// notify the user when it is done: browser notifications (Web Push) if the browser can, else — or if refused —
// email. (In-app toasts for uploads finishing in an open tab are the element's.)
// Permission is requested only from a click on that offer: never on page load, and browsers ignore or quieten
// prompts that no user gesture asked for. Decisions about uploads stay in the engine; this only relays choices to
// the server (<base>/api/profile, <base>/api/notifications/...). Every sentence shown is the engine's (NOTIFY_TEXT
// in wire.js).
import { NOTIFY_TEXT as T } from "./wire.js";

/** @typedef {import("./wire.js").UploadView} UploadView */

// Offline, or without a reachable push service, subscribe() may never settle: give up and offer email instead.
// (Tests shorten the wait through globalThis.__notifyConfig.)
const SUBSCRIBE_TIMEOUT_MS = globalThis.__notifyConfig?.subscribeTimeoutMs ?? 15000;

const pushSupported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function sameBytes(buffer, bytes) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  return a.length === bytes.length && a.every((value, i) => value === bytes[i]);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The server calls of one uploader mount (`base`: "" at the origin's root, or the host's prefix). */
class NotifyApi {
  /** @param {string} base */
  constructor(base) {
    this.base = base;
    this.profile = null;
  }

  async call(path, init = {}) {
    const response = await fetch(this.base + path, {
      ...init,
      headers: { "Content-Type": "application/json", ...(init.headers || {}) },
      credentials: "same-origin",
    });
    if (!response.ok) {
      const error = new Error(`${init.method || "GET"} ${path}: ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.status === 204 ? null : response.json();
  }

  async loadProfile() {
    if (!this.profile) {
      this.profile = await this.call("/api/profile")
        .catch(() => ({ email: null, email_notifications: true, email_confirmed: false }));
    }
    return this.profile;
  }

  async saveProfile(changes) {
    this.profile = await this.call("/api/profile", { method: "PUT", body: JSON.stringify(changes) });
    return this.profile;
  }

  /** The Service Worker that shows pushes: `<base>/sw.js`, for the pages under the mount. */
  registerWorker() {
    return navigator.serviceWorker.register(`${this.base}/sw.js`, { scope: `${this.base}/` })
      .then(() => navigator.serviceWorker.ready);
  }

  postSubscription(subscription) {
    return this.call("/api/notifications/push-subscriptions", {
      method: "POST", body: JSON.stringify(subscription.toJSON()),
    });
  }

  // Subscribe with the server's VAPID key (replacing a subscription made with another key) and hand it over.
  async subscribe() {
    const registration = await this.registerWorker();
    const { public_key: publicKey } = await this.call("/api/notifications/vapid-public-key");
    const key = fromBase64Url(publicKey);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameBytes(subscription.options.applicationServerKey, key)) {
      await subscription.unsubscribe();
      subscription = null;
    }
    if (!subscription) {
      subscription = await withTimeout(
        registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }),
        SUBSCRIBE_TIMEOUT_MS,
        "push subscription",
      );
    }
    await this.postSubscription(subscription);
  }

  // The server forgets this browser's subscription first (so nothing more is sent), then the browser drops it.
  async unsubscribe() {
    const registration = await this.registerWorker();
    const subscription = await registration.pushManager.getSubscription();
    if (subscription) {
      const endpoint = encodeURIComponent(subscription.endpoint);
      await this.call(`/api/notifications/push-subscriptions?endpoint=${endpoint}`, { method: "DELETE" });
      await subscription.unsubscribe();
    }
  }
}

/** @type {Set<string>} mounts whose subscription this page already refreshed */
const refreshed = new Set();

/**
 * Keeps the Service Worker registered and the server's copy of an existing subscription current, once per page and
 * mount. No prompt: permission is only read here, never requested.
 * @param {string} base
 */
export function refreshSubscription(base) {
  if (!pushSupported || refreshed.has(base)) return;
  refreshed.add(base);
  const api = new NotifyApi(base);
  api.registerWorker()
    .then(async (registration) => {
      if (Notification.permission !== "granted") return;
      const subscription = await registration.pushManager.getSubscription();
      if (subscription) await api.postSubscription(subscription);
    })
    .catch((error) => console.warn("service worker:", error));
}

/** The offer, rendered into `region` (a hidden element the caller placed); one offer per element. */
export class NotificationOffer {
  /**
   * @param {HTMLElement} region
   * @param {string} base
   */
  constructor(region, base) {
    this.region = region;
    this.api = new NotifyApi(base);
    /** @type {string | null} local_id of the upload the offer was made for */
    this.offeredFor = null;
    region.hidden = true;
    region.setAttribute("aria-live", "polite");
    region.setAttribute("aria-label", T.region_label);
  }

  /** Every card's view model, as the engine sends it. @param {UploadView} view */
  view(view) {
    if (!view || !view.local_id) return;
    if (view.phase === "completed" || view.phase === "blocked") {
      // The upload finished while the offer was still unanswered: it is moot now.
      const open = ["push-offer", "email-form"].includes(this.region.dataset.state);
      if (view.local_id === this.offeredFor && open) this.region.hidden = true;
      return;
    }
    if (view.offer_notification && this.offeredFor === null) {
      this.offeredFor = view.local_id;
      this.offer().catch((error) => console.error("notification offer failed:", error));
    }
  }

  show(state, ...children) {
    this.region.dataset.state = state;
    this.region.replaceChildren(...children);
    this.region.hidden = false;
  }

  button(className, text, onClick) {
    const button = el("button", { type: "button", className, textContent: text });
    button.setAttribute("part", "button");
    button.addEventListener("click", onClick);
    return button;
  }

  async offer() {
    if (pushSupported && Notification.permission === "granted") return this.turnOnPush();
    if (pushSupported && Notification.permission === "default") return this.offerPush();
    const known = await this.api.loadProfile();
    if (known.email && known.email_notifications) return this.emailOn(known.email, known.email_confirmed);
    return this.offerEmail(pushSupported ? T.push_blocked : T.push_unsupported);
  }

  offerPush() {
    const allow = this.button("notify-push", T.push_button, async () => {
      allow.disabled = email.disabled = true;
      // The one place permission is asked: a click on an offer shown for a long upload.
      const answer = await Notification.requestPermission();
      if (answer === "granted") return this.turnOnPush();
      return this.offerEmail(T.push_blocked);
    });
    const email = this.button("notify-email", T.email_button, () => this.offerEmail(""));
    this.show("push-offer", el("p", { textContent: T.offer }), allow, email);
  }

  async turnOnPush() {
    this.show("working", el("p", { textContent: T.push_working }));
    try {
      await this.api.subscribe();
    } catch (error) {
      console.warn("push subscription failed:", error);
      return this.offerEmail(T.push_unavailable);
    }
    const off = this.button("notify-off", T.turn_off, () => {
      off.disabled = true;
      this.turnOffPush();
    });
    this.show("push-on", el("p", { textContent: T.push_on }), off);
  }

  async turnOffPush() {
    try {
      await this.api.unsubscribe();
    } catch (error) {
      console.warn("turning push off failed:", error);
      const retry = this.button("notify-off", T.try_again, () => {
        retry.disabled = true;
        this.turnOffPush();
      });
      return this.show("push-on", el("p", { className: "notify-error", textContent: T.push_off_failed }), retry);
    }
    const email = this.button("notify-email", T.email_button, () => this.offerEmail(""));
    this.show("push-off", el("p", { textContent: T.push_off }), email);
  }

  async offerEmail(reason) {
    const known = await this.api.loadProfile();
    const input = el("input", {
      type: "email", name: "email", required: true, autocomplete: "email", placeholder: T.email_placeholder,
      value: known.email || "",
    });
    input.setAttribute("aria-label", T.email_address);
    input.setAttribute("part", "input");
    const note = el("span", { className: "notify-error", role: "alert" });
    const submit = el("button", { type: "submit", textContent: T.email_submit });
    submit.setAttribute("part", "button");
    const form = el("form", { className: "notify-email-form" }, el("label", { textContent: T.email_label }), input,
      submit, note);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      note.textContent = "";
      let profile;
      try {
        profile = await this.api.saveProfile({ email: input.value.trim(), email_notifications: true });
      } catch (error) {
        note.textContent = error.status === 422 ? T.email_invalid : T.email_save_failed;
        return;
      }
      this.emailOn(profile.email, profile.email_confirmed);
    });
    this.show("email-form", ...(reason ? [el("p", { className: "notify-reason", textContent: reason })] : []), form);
  }

  // Nothing is mailed to an address before its owner confirms it (the server sends the link): say so until then.
  emailOn(address, confirmed) {
    const change = this.button("notify-change", T.email_change, () => this.offerEmail(""));
    const stop = this.button("notify-off", T.email_stop, async () => {
      stop.disabled = change.disabled = true;
      try {
        await this.api.saveProfile({ email_notifications: false });
      } catch (error) {
        console.warn("turning email off failed:", error);
        stop.disabled = change.disabled = false;
        return;
      }
      this.show("email-off", el("p", { textContent: T.email_off }));
    });
    const text = (confirmed ? T.email_on : T.email_confirm).replace("{address}", address);
    this.show("email-on", el("p", { textContent: text }), change, stop);
  }
}
