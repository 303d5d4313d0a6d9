// The client API's relay, in Node: a stand-in SharedWorker port plays the engine's messages (the real worker runs
// in the browser tests); the API must turn them into the documented events, once each, with links under the base.
import assert from "node:assert/strict";
import test from "node:test";

const posted = [];
let port = null;
globalThis.addEventListener ??= () => {};
globalThis.self ??= globalThis;
globalThis.navigator ??= {}; // no Service Worker, no locks: the page glue's optional parts stay off
globalThis.SharedWorker = class {
  constructor(url, options) {
    this.url = url;
    this.options = options;
    void options.extendedLifetime; // a browser that knows the option reads it
    port = this.port = { onmessage: null, postMessage: (message) => posted.push(message) };
  }
};
const { createUploader } = await import("../../../web/client.mjs");

const view = (fields) => ({ local_id: "u1", phase: "uploading", banner: null, link: null, actions: [], ...fields });
const send = (message) => port.onmessage({ data: JSON.stringify(message) });

test("events, once each, with links under the base", () => {
  const uploader = createUploader({ base: "/uploader/" });
  assert.equal(createUploader({ base: "/uploader" }), uploader, "one uploader per base");
  assert.deepEqual(posted.find((m) => m.type === "hello"), { type: "hello", extended_lifetime: true });
  const seen = [];
  for (const type of ["change", "failed", "leave-hint", "completed", "removed", "summary", "engine"]) {
    uploader.addEventListener(type, (event) => seen.push([type, event.detail]));
  }
  send({ type: "engine", status: "ready", uploads: [view({ link: "/files/s1" })] });
  send({ type: "upload", view: view({ banner: "You can leave." }) });
  send({ type: "upload", view: view({ banner: "You can leave.", percent: 40 }) });
  send({ type: "upload", view: view({ phase: "failed" }) });
  send({ type: "upload", view: view({ phase: "failed", label: "still" }) });
  send({ type: "completed", local_id: "u1", message: "done", link: "/files/s1" });
  send({ type: "removed", local_id: "u1" });
  const types = seen.map(([type]) => type);
  assert.deepEqual(types, ["change", "engine", "change", "leave-hint", "change", "change", "failed", "change",
    "completed", "removed"]);
  assert.equal(seen[0][1].link, "/uploader/files/s1");
  assert.equal(seen.find(([type]) => type === "completed")[1].link, "/uploader/files/s1");
  assert.deepEqual(uploader.uploads(), []);
  uploader.retry("u2");
  assert.deepEqual(posted.at(-1), { type: "action", local_id: "u2", action: "retry" });
});
