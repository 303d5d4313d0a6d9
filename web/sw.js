// The app's Service Worker, served at /sw.js so its scope is the whole origin. It shows the "upload complete"
// pushes the server sends (server/notify/webpush.py) and opens the file's page when a notification is clicked.
// It has no fetch handler on purpose: it never stands between the app and the network.

self.addEventListener("install", () => self.skipWaiting());

// Only paths of this origin are opened, whatever a payload says.
function samePath(url) {
  try {
    const target = new URL(url || "/files", self.location.origin);
    if (target.origin === self.location.origin) return target.pathname + target.search;
  } catch {
    // fall through to the default
  }
  return "/files";
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
