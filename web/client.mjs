// The uploader's client API for any page of the host: one ES module, no framework.
//
//   import { createUploader } from "/uploader/static/client.mjs";
//   const uploader = createUploader({ base: "/uploader" });
//   uploader.addEventListener("change", (e) => render(e.detail));   // e.detail: UploadView (web/wire.d.ts)
//   uploader.add(input.files);
//
// It only relays: the engine (Python, in one SharedWorker per origin) decides everything a card says and which
// actions it offers; this module posts picks and actions to it and turns what it sends into events. Every widget on
// a page shares one connection per base; every tab of the origin shares the one engine.

/** @typedef {import("./wire.js").UploadView} UploadView */
/** @typedef {import("./wire.js").WorkerMessage} WorkerMessage */

import { watchBackground } from "./background.mjs";

export const WORKER_NAME = "smartcat-uploader";

/**
 * A connection to the origin's engine. Normally a SharedWorker that every tab talks to. Without SharedWorker, the
 * tabs elect one of them with a Web Lock to run the engine in a dedicated Worker; the others talk to it over a
 * BroadcastChannel, and when that tab closes the next one takes over (and resumes from OPFS).
 * @param {string} workerUrl
 * @param {(data: string) => void} onMessage the worker's JSON text
 * @returns {{ post: (message: object) => void, mode: "shared" | "dedicated", extendedLifetime: boolean }}
 */
export function connectEngine(workerUrl, onMessage) {
  let extendedLifetime = false;
  if (typeof SharedWorker === "function") {
    try {
      // extendedLifetime keeps the worker (and the upload) running for minutes after the last tab closes. Every
      // page must pass the same options, or it cannot connect to the running worker. The getter tells whether this
      // browser knows the option (one that does reads it; others ignore it).
      const options = {
        type: "module",
        name: WORKER_NAME,
        get extendedLifetime() { extendedLifetime = true; return true; },
      };
      const shared = new SharedWorker(workerUrl, /** @type {WorkerOptions} */ (options));
      shared.port.onmessage = (event) => onMessage(event.data);
      return { post: (message) => shared.port.postMessage(message), mode: "shared", extendedLifetime };
    } catch (error) {
      console.warn("SharedWorker failed to start; using a dedicated worker", error);
    }
  }
  const channel = new BroadcastChannel(WORKER_NAME);
  /** @type {Worker | null} */
  let dedicated = null;
  channel.onmessage = (event) => {
    const { to, data } = event.data;
    if (to === "pages") onMessage(data);
    else if (to === "engine" && dedicated) dedicated.postMessage(data);
  };
  navigator.locks.request(`${WORKER_NAME}-engine`, () => new Promise(() => {
    // Held until this tab closes: this tab now runs the engine for all of them.
    dedicated = new Worker(workerUrl, { type: "module", name: WORKER_NAME });
    dedicated.onmessage = (event) => {
      onMessage(event.data);
      channel.postMessage({ to: "pages", data: event.data });
    };
    dedicated.postMessage({ type: "hello" });
  }));
  const post = (message) => {
    if (message.type === "bye") return; // the engine has one port here (its own scope): never detach it
    if (dedicated) dedicated.postMessage(message);
    else channel.postMessage({ to: "engine", data: message });
  };
  return { post, mode: "dedicated", extendedLifetime };
}

/** The status page link of a view, under the uploader's base (the engine words paths from the uploader's root). */
function underBase(base, link) {
  return typeof link === "string" && link.startsWith("/") ? base + link : link;
}

export class Uploader extends EventTarget {
  /** @param {{ base?: string }} [options] */
  constructor({ base = "" } = {}) {
    super();
    this.base = base.replace(/\/+$/, "");
    /** @type {Map<string, UploadView>} */
    this._views = new Map();
    this._summary = { active: 0, percent: 0, text: "" };
    this._engine = { status: "starting" };
    const connection = connectEngine(`${this.base}/static/worker.mjs`, (data) => this._receive(data));
    this._connection = connection;
    this.mode = connection.mode;
    this.extendedLifetime = connection.extendedLifetime;
    this.post({ type: "hello", extended_lifetime: this.extendedLifetime });
    watchBackground(this); // says again, once known, whether this page can hand uploads to the browser
    addEventListener("pagehide", () => this.post({ type: "bye" }));
    // The worker hears the network come and go too, but pages hear it first (and in every browser).
    addEventListener("online", () => this.post({ type: "connectivity", online: true }));
    addEventListener("offline", () => this.post({ type: "connectivity", online: false }));
  }

  /** Posts one page message (wire.js PageMessage) to the engine as it is. */
  post(message) { this._connection.post(message); }

  /** Files picked or dropped (a FileList or an array of File). */
  add(files) {
    const list = [...files];
    if (list.length) this.post({ type: "add", files: list });
  }
  pause(id) { this.act(id, "pause"); }
  resume(id) { this.act(id, "resume"); }
  cancel(id) { this.act(id, "cancel"); }
  retry(id) { this.act(id, "retry"); }
  dismiss(id) { this.act(id, "dismiss"); }
  /** "Got it" on the you-can-leave banner: every tab stops showing it for that upload. */
  hideBanner(id) { this.act(id, "hide-banner"); }
  /** The file chosen again for an upload that asks for it (action "choose"); the engine checks it is the same. */
  choose(id, file) { this.post({ type: "choose", local_id: id, files: [file] }); }
  /** Any action a card offers (UploadView.actions); the engine ignores one the card does not offer now. */
  act(id, action) { this.post({ type: "action", local_id: id, action }); }

  /** @returns {UploadView[]} every upload's card, oldest first */
  uploads() { return [...this._views.values()]; }
  summary() { return this._summary; }
  engine() { return this._engine; }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  _receive(data) {
    /** @type {WorkerMessage | {type: "engine", status: string, error?: string}} */
    const message = JSON.parse(data);
    this._emit("message", message);
    if (message.type === "engine") {
      this._engine = message;
      for (const view of message.uploads || []) this._view(view);
      this._emit("engine", message);
    } else if (message.type === "upload") {
      this._view(message.view);
    } else if (message.type === "removed") {
      this._views.delete(message.local_id);
      this._emit("removed", { local_id: message.local_id });
    } else if (message.type === "notice") {
      this._emit("notice", message);
    } else if (message.type === "summary") {
      this._summary = message.summary;
      this._emit("summary", message.summary);
    } else if (message.type === "completed") {
      this._emit("completed", { ...message, link: underBase(this.base, message.link) });
    } else if (message.type === "error") {
      this._emit("error", message);
    }
  }

  _view(raw) {
    const view = { ...raw, link: underBase(this.base, raw.link) };
    const before = this._views.get(view.local_id);
    this._views.set(view.local_id, view);
    this._emit("change", view);
    if (view.phase === "failed" && before?.phase !== "failed") this._emit("failed", view);
    if (view.banner && view.banner !== before?.banner) this._emit("leave-hint", view);
  }
}

/** @type {Map<string, Uploader>} */
const uploaders = new Map();

/**
 * The uploader for `base` (where the host mounted it, e.g. "/uploader"; "" at the origin's root). Every call with
 * the same base returns the same object: one connection per page, one engine per origin.
 * @param {{ base?: string }} [options]
 * @returns {Uploader}
 */
export function createUploader({ base = "" } = {}) {
  const key = base.replace(/\/+$/, "");
  let uploader = uploaders.get(key);
  if (!uploader) {
    uploader = new Uploader({ base: key });
    uploaders.set(key, uploader);
  }
  return uploader;
}
