// The app's Service Worker, served at /sw.js so its scope is the whole origin. It shows the "upload complete"
// pushes the server sends (server/notify/webpush.py) and opens the file's page when a notification is clicked, and
// it finishes uploads whose rest the engine handed to the browser's Background Fetch (browser_py/engine/handoff.py)
// with no Python and maybe no page: it reports each part's outcome to the server, which completes the upload from
// what S3 holds, and tells any open page that the registration ended (the engine then asks S3 and sends what
// failed). It has no fetch handler on purpose: it never stands between the app and the network.

self.addEventListener("install", () => self.skipWaiting());

// The uploader's own paths are under this worker's scope (its base: "/" alone, "/uploader/" under a host's mount).
const BASE = new URL(self.registration.scope).pathname;
const FILES = `${BASE}files`;

// Only paths of this origin are opened, whatever a payload says (the server's payloads carry the base already).
function samePath(url) {
  try {
    const target = new URL(url || FILES, self.location.origin);
    if (target.origin === self.location.origin) return target.pathname + target.search;
  } catch {
    // fall through to the default
  }
  return FILES;
}

function notificationFor(data) {
  let message = {};
  try {
    message = data ? data.json() : {};
  } catch {
    message = { body: data ? data.text() : "" };
  }
  const text = (value, fallback) => (typeof value === "string" && value ? value : fallback);
  return {
    title: text(message.title, "Upload complete"),
    options: {
      body: text(message.body, "Your upload has finished."),
      tag: text(message.tag, undefined),
      data: { url: samePath(message.url), files: Array.isArray(message.files) ? message.files : [] },
      timestamp: Date.now(),
    },
  };
}

self.addEventListener("push", (event) => {
  const { title, options } = notificationFor(event.data);
  event.waitUntil(self.registration.showNotification(title, options));
});

// Focus a tab already showing the page, or open one.
async function openPage(path) {
  const url = new URL(samePath(path), self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => client.url === url);
  if (open) return open.focus();
  return self.clients.openWindow(url);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openPage(event.notification.data && event.notification.data.url));
});

// ---- Background Fetch: "smartcat-upload|<session id>|<upload token>" registrations (engine/handoff.py).

const HAND_OFF = "smartcat-upload";

function handOffOf(id) {
  const [prefix, session, token] = String(id).split("|");
  return prefix === HAND_OFF && session ? { session, token: token || "" } : null;
}

async function outcome(record) {
  const number = Number(new URL(record.request.url).searchParams.get("partNumber"));
  try {
    const response = await record.responseReady;
    return { part_number: number, status: response.status, etag: response.headers.get("ETag") };
  } catch {
    return { part_number: number, status: 0, etag: null }; // never answered (cut off, or the request failed)
  }
}

async function tellPages(id) {
  const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const page of pages) page.postMessage({ type: "background-ended", registration_id: id });
}

// The server completes from what S3 lists (every part checked against its signed checksum); it answers 409 while a
// part is missing, which the engine then sends on the next visit. Either answer words the title the browser's own
// progress UI ends with (wire/view.py BACKGROUND_TEXT): this script shows it, it says nothing of its own.
async function finish(event) {
  const registration = event.registration;
  const handOff = handOffOf(registration.id);
  if (!handOff) return;
  try {
    const parts = (await Promise.all((await registration.matchAll()).map(outcome))).filter((p) => p.part_number > 0);
    const url = new URL(`api/uploads/${encodeURIComponent(handOff.session)}/finish`, self.registration.scope);
    const answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Upload-Token": handOff.token },
      body: JSON.stringify({ parts }),
    });
    const said = await answer.json().catch(() => ({}));
    const title = answer.ok ? said.title : said.detail && said.detail.title;
    if (typeof title === "string" && title && event.updateUI) await event.updateUI({ title });
  } finally {
    await tellPages(registration.id);
  }
}

self.addEventListener("backgroundfetchsuccess", (event) => event.waitUntil(finish(event)));
self.addEventListener("backgroundfetchfail", (event) => event.waitUntil(finish(event)));
self.addEventListener("backgroundfetchabort", (event) => event.waitUntil(tellPages(event.registration.id)));
self.addEventListener("backgroundfetchclick", (event) => event.waitUntil(openPage(BASE)));
