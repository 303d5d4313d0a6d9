// Completion notifications, page side. Listens to the "upload-view" events app.mjs dispatches (detail: the engine's
// view model) and, once an upload's view says offer_notification (a long wait, still going), offers to
// notify the user when it is done: browser notifications (Web Push) if the browser can, else — or if refused —
// email. (In-app toasts for uploads finishing in an open tab are app.mjs's.)
// Permission is requested only from a click on that offer: never on page load, and browsers ignore or quieten
// prompts that no user gesture asked for. Decisions about uploads stay in the engine; this only relays choices to
// the server (/api/profile, /api/notifications/...). Every sentence shown is the engine's (NOTIFY_TEXT in wire.js).
import { NOTIFY_TEXT as T } from "./wire.js";

// Offline, or without a reachable push service, subscribe() may never settle: give up and offer email instead.
// (Tests shorten the wait through globalThis.__notifyConfig.)
const SUBSCRIBE_TIMEOUT_MS = globalThis.__notifyConfig?.subscribeTimeoutMs ?? 15000;

const pushSupported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
let offeredFor = null; // local_id of the upload the offer was made for; one offer per page
let profile = null;

// ---------------------------------------------------------------- page elements

const region = document.createElement("section");
region.id = "notify";
region.className = "notify";
region.hidden = true;
region.setAttribute("aria-live", "polite");
region.setAttribute("aria-label", "Completion notifications");
// Right under the "you can leave" banner when the page has one: the offer is its natural follow-up.
const anchor = document.querySelector("#leave-banner") || document.querySelector("section.uploads");
if (anchor && anchor.id === "leave-banner") anchor.after(region);
else if (anchor) anchor.before(region);
else document.body.append(region);

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function show(state, ...children) {
  region.dataset.state = state;
  region.replaceChildren(...children);
  region.hidden = false;
}

// ---------------------------------------------------------------- server calls

async function api(path, init = {}) {
  const response = await fetch(path, {
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

async function loadProfile() {
  if (!profile) {
    profile = await api("/api/profile").catch(() => ({ email: null, email_notifications: true, email_confirmed: false }));
  }
  return profile;
}

// ---------------------------------------------------------------- Web Push

function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function sameBytes(buffer, bytes) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  return a.length === bytes.length && a.every((value, i) => value === bytes[i]);
}

function registerWorker() {
  return navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(() => navigator.serviceWorker.ready);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Subscribe with the server's VAPID key (replacing a subscription made with another key) and hand it to the server.
async function subscribe() {
  const registration = await registerWorker();
  const { public_key: publicKey } = await api("/api/notifications/vapid-public-key");
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
  await api("/api/notifications/push-subscriptions", { method: "POST", body: JSON.stringify(subscription.toJSON()) });
}

async function turnOnPush() {
  show("working", el("p", { textContent: T.push_working }));
  try {
    await subscribe();
  } catch (error) {
    console.warn("push subscription failed:", error);
    return offerEmail(T.push_unavailable);
  }
  const off = el("button", { type: "button", className: "notify-off", textContent: T.turn_off });
  off.addEventListener("click", () => {
    off.disabled = true;
    turnOffPush();
  });
  show(
    "push-on",
    el("p", { textContent: T.push_on }),
    off,
  );
}

// The server forgets this browser's subscription first (so nothing more is sent), then the browser drops it.
async function turnOffPush() {
  try {
    const registration = await registerWorker();
    const subscription = await registration.pushManager.getSubscription();
    if (subscription) {
      const endpoint = encodeURIComponent(subscription.endpoint);
      await api(`/api/notifications/push-subscriptions?endpoint=${endpoint}`, { method: "DELETE" });
      await subscription.unsubscribe();
    }
  } catch (error) {
    console.warn("turning push off failed:", error);
    const retry = el("button", { type: "button", className: "notify-off", textContent: T.try_again });
    retry.addEventListener("click", () => {
      retry.disabled = true;
      turnOffPush();
    });
    return show("push-on", el("p", { className: "notify-error", textContent: T.push_off_failed }), retry);
  }
  const email = el("button", { type: "button", className: "notify-email", textContent: T.email_button });
  email.addEventListener("click", () => offerEmail(""));
  show("push-off", el("p", { textContent: T.push_off }), email);
}

// ---------------------------------------------------------------- the offer

function offerPush() {
  const allow = el("button", { type: "button", className: "notify-push", textContent: T.push_button });
  const email = el("button", { type: "button", className: "notify-email", textContent: T.email_button });
  allow.addEventListener("click", async () => {
    allow.disabled = email.disabled = true;
    // The one place permission is asked: a click on an offer shown for a long upload.
    const answer = await Notification.requestPermission();
    if (answer === "granted") return turnOnPush();
    return offerEmail(T.push_blocked);
  });
  email.addEventListener("click", () => offerEmail(""));
  show(
    "push-offer",
    el("p", { textContent: T.offer }),
    allow,
    email,
  );
}

async function offerEmail(reason) {
  const known = await loadProfile();
  const input = el("input", {
    type: "email",
    name: "email",
    required: true,
    autocomplete: "email",
    placeholder: "you@example.com",
    value: known.email || "",
  });
  input.setAttribute("aria-label", "Email address");
  const note = el("span", { className: "notify-error" });
  const form = el(
    "form",
    { className: "notify-email-form" },
    el("label", { textContent: T.email_label }),
    input,
    el("button", { type: "submit", textContent: T.email_submit }),
    note,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    note.textContent = "";
    try {
      profile = await api("/api/profile", {
        method: "PUT",
        body: JSON.stringify({ email: input.value.trim(), email_notifications: true }),
      });
    } catch (error) {
      note.textContent = error.status === 422 ? T.email_invalid : T.email_save_failed;
      return;
    }
    emailOn(profile.email, profile.email_confirmed);
  });
  show("email-form", ...(reason ? [el("p", { className: "notify-reason", textContent: reason })] : []), form);
}

// Nothing is mailed to an address before its owner confirms it (the server sends the link): say so until then.
function emailOn(address, confirmed) {
  const change = el("button", { type: "button", className: "notify-change", textContent: T.email_change });
  change.addEventListener("click", () => offerEmail(""));
  const stop = el("button", { type: "button", className: "notify-off", textContent: T.email_stop });
  stop.addEventListener("click", async () => {
    stop.disabled = change.disabled = true;
    try {
      profile = await api("/api/profile", { method: "PUT", body: JSON.stringify({ email_notifications: false }) });
    } catch (error) {
      console.warn("turning email off failed:", error);
      stop.disabled = change.disabled = false;
      return;
    }
    show("email-off", el("p", { textContent: T.email_off }));
  });
  show(
    "email-on",
    el("p", { textContent: (confirmed ? T.email_on : T.email_confirm).replace("{address}", address) }),
    change,
    stop,
  );
}

async function offer() {
  if (pushSupported && Notification.permission === "granted") return turnOnPush();
  if (pushSupported && Notification.permission === "default") return offerPush();
  const known = await loadProfile();
  if (known.email && known.email_notifications) return emailOn(known.email, known.email_confirmed);
  return offerEmail(pushSupported ? T.push_blocked : T.push_unsupported);
}

// ---------------------------------------------------------------- wiring

addEventListener("upload-view", (event) => {
  const view = event.detail;
  if (!view || !view.local_id) return;
  if (view.phase === "completed" || view.phase === "blocked") {
    // The upload finished while the offer was still unanswered: it is moot now.
    const open = ["push-offer", "email-form"].includes(region.dataset.state);
    if (view.local_id === offeredFor && open) region.hidden = true;
    return;
  }
  if (view.offer_notification && offeredFor === null) {
    offeredFor = view.local_id;
    offer().catch((error) => console.error("notification offer failed:", error));
  }
});

// Keep the worker registered and the server's copy of an existing subscription current. No prompt: permission is
// only read here, never requested.
if (pushSupported) {
  registerWorker()
    .then(async (registration) => {
      if (Notification.permission !== "granted") return;
      const subscription = await registration.pushManager.getSubscription();
      if (subscription) {
        await api("/api/notifications/push-subscriptions", { method: "POST", body: JSON.stringify(subscription.toJSON()) });
      }
    })
    .catch((error) => console.warn("service worker:", error));
}
