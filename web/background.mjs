// Background Fetch glue, thin: the engine (browser_py/engine/handoff.py) decides when the rest of an upload goes to
// the browser; this page says whether it can make such a registration and which are running (in its hello), makes
// the one the engine asks for (only a top-level page can), and relays the Service Worker's word that one ended.
// Where the API is missing, the hello says so and the engine keeps every part to itself.

const supported =
  typeof self.BackgroundFetchManager === "function" && "serviceWorker" in navigator && "locks" in navigator;

/** The app's Service Worker (web/sw.js), registered if needed: Background Fetch needs an active one. */
async function serviceWorker(base) {
  await navigator.serviceWorker.register(`${base}/sw.js`, { scope: `${base}/` });
  return navigator.serviceWorker.ready;
}

/**
 * What a hello says of Background Fetch here: available, and the ids of the registrations running now (left out
 * when not known: the engine then takes none for ended).
 * @returns {Promise<{background_fetch: boolean, background_ids?: string[]}>}
 */
export async function backgroundState(base) {
  if (!supported) return { background_fetch: false, background_ids: [] };
  try {
    const manager = (await serviceWorker(base)).backgroundFetch;
    const running = [];
    for (const id of await manager.getIds()) {
      const registration = await manager.get(id);
      if (registration && registration.result === "") running.push(id);
    }
    return { background_fetch: true, background_ids: running };
  } catch (error) {
    console.warn("Background Fetch is not usable here", error);
    return { background_fetch: false }; // which are running is not known: the engine assumes none ended
  }
}

/** The browser's copy of an upload: browser_py/adapters/opfs.py keeps it at <directory>/<local_id>.bin, in the
 * folder of the uploads' owner ("uploads", or "uploads-<key>" for a signed-in user), which the request names. */
async function savedCopy(directory, localId) {
  const uploads = await (await navigator.storage.getDirectory()).getDirectoryHandle(directory);
  return (await uploads.getFileHandle(`${localId}.bin`)).getFile();
}

/**
 * Registers the hand-off (wire.js HandOffRequest) unless it exists; resolves once the registration exists. One
 * page at a time (a Web Lock per registration), so two pages asked cannot make two.
 */
async function register(base, request) {
  const manager = (await serviceWorker(base)).backgroundFetch;
  await navigator.locks.request(`smartcat-handoff:${request.registration_id}`, async () => {
    if (await manager.get(request.registration_id)) return;
    const copy = await savedCopy(request.directory, request.local_id);
    const requests = request.parts.map((part) => {
      const url = new URL(part.url, location.href);
      if (url.origin !== location.origin) throw new Error(`part URLs are not on this origin (${url.origin})`);
      return new Request(url.href, {
        method: "PUT",
        body: copy.slice(part.offset, part.offset + part.length),
        headers: { "x-amz-checksum-sha256": part.checksum_sha256 },
      });
    });
    try {
      await manager.fetch(request.registration_id, requests, { title: request.title, downloadTotal: 0 });
    } catch (error) {
      if (!(await manager.get(request.registration_id))) throw error;
    }
  });
}

/** Wires an Uploader (web/client.mjs) to Background Fetch: a second hello with what this page can, hand-offs made
 * on the engine's request, and the Service Worker's "ended" relayed. */
export function watchBackground(uploader) {
  if (!supported) return;
  const post = (message) => uploader.post(message);
  navigator.serviceWorker.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type === "background-ended" && typeof data.registration_id === "string") {
      post({ type: "background-ended", registration_id: data.registration_id });
    }
  });
  navigator.serviceWorker.startMessages();
  uploader.addEventListener("message", (event) => {
    const message = event.detail;
    if (message.type !== "handoff") return;
    register(uploader.base, message).then(
      // No "refused" at all when it exists: a JavaScript null is not Python's None in the worker.
      () => post({ type: "handoff-answer", registration_id: message.registration_id }),
      (error) => post({ type: "handoff-answer", registration_id: message.registration_id,
                        refused: String(error && error.message || error) }),
    );
  });
  backgroundState(uploader.base).then((state) =>
    post({ type: "hello", extended_lifetime: uploader.extendedLifetime, ...state }));
}
