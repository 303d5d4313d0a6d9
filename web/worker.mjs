// SharedWorker glue: boot Pyodide from this origin (from a memory snapshot with the engine already imported when the
// build made one, else plainly with the engine wheel), hand every page port to Python.
// Decisions live in Python (browser_py); this file only loads and relays.
const ports = [];
let hub = null;

// Registered synchronously, before any await, or early pages are never heard.
self.addEventListener("connect", (event) => {
  const port = event.ports[0];
  ports.push(port);
  if (hub) hub.attach(port);
  else port.postMessage(JSON.stringify({ type: "engine", status: "starting" }));
});

// Fallback for browsers without SharedWorker: the page runs this as a dedicated Worker and is its only port.
if (!("onconnect" in self)) {
  ports.push(self);
  self.postMessage(JSON.stringify({ type: "engine", status: "starting" }));
}

function broadcast(message) {
  for (const port of ports) port.postMessage(JSON.stringify(message));
}

// ---------------------------------------------------------------- booting Python (startPython is self-contained)

// Asked for before anything else, so the snapshot download starts while this module is still settling. Relative to
// this script (<prefix>/static/worker.mjs), so the uploader works mounted under a path of a host application.
const runtimeManifest = fetch("../api/runtime", { credentials: "same-origin" }).then((r) => {
  if (!r.ok) throw new Error(`runtime manifest: HTTP ${r.status}`);
  return r.json();
});

// How this worker booted, for tests and the benchmark (see the diagnostics channel below).
const bootInfo = { mode: null, fallback: null, python_ms: null, ready_ms: null, error: null, phases: {} };
const phase = (name) => { bootInfo.phases[name] = Math.round(performance.now()); };
let python = null;

async function fetchBytes(url, what) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status}`);
  return response;
}

// The snapshot is a plain immutable file holding only its non-zero pages (about 12 MB of a 31 MB heap), which the
// server sends brotli- or gzip-encoded (about 3 MB) and the browser decodes off this thread; `pages` lists where they
// go ([first page, count] runs) in an otherwise zeroed buffer. They hold the snapshot XOR the fresh memory the wasm
// instance starts with (restore.mjs; undone in freshModule below). Copying them in waits for `go`: loadPyodide must
// have started its own downloads first.
async function snapshotBytes(snapshot, go) {
  const response = await fetchBytes(snapshot.url, "memory snapshot");
  phase("snapshot_headers");
  await go;
  const out = new Uint8Array(snapshot.size);
  const segments = snapshot.pages.map(([first, count]) => {
    const start = first * snapshot.page_size;
    return [start, Math.min(count * snapshot.page_size, snapshot.size - start)];
  });
  let seg = 0;
  let filled = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (let pos = 0; pos < value.length;) {
      if (seg >= segments.length) throw new Error("memory snapshot: more bytes than its page map");
      const [start, length] = segments[seg];
      const n = Math.min(length - filled, value.length - pos);
      out.set(value.subarray(pos, pos + n), start + filled);
      pos += n;
      filled += n;
      if (filled === length) { seg += 1; filled = 0; }
    }
  }
  if (seg !== segments.length) throw new Error("memory snapshot: truncated");
  phase("snapshot_decoded");
  return out;
}

function snapshotUsable(runtime) {
  const s = runtime.snapshot;
  if (!s) return "the build made no snapshot";
  if (s.encoding !== "pages-xor-base" || !s.pages || !s.base || !s.stdlib) return "cannot decode it";
  return null;
}

// Pyodide's module factory, wrapped: keep the memory as the wasm's instantiation left it (its data segments) and,
// before Pyodide copies the snapshot in, XOR it into the snapshot, after checking it is the memory the build saw.
function freshModule(createPyodideModule, snapshot, info) {
  return async (settings) => {
    const { applyBase, atInstantiation, baseSha256 } = await import("./restore.mjs");
    const bytes = await snapshot;
    const header = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
    const { pages, page_size: pageSize, sha256 } = info.base;
    let base = null;
    const module = await createPyodideModule(atInstantiation(settings, (memory) => {
      base = memory.slice(0, (pages.at(-1)[0] + pages.at(-1)[1]) * pageSize);
    }));
    const found = base && await baseSha256(base, pages, pageSize, bytes.length - header);
    if (found !== sha256) throw new Error(`memory snapshot: the fresh memory is ${found}, the build's ${sha256}`);
    applyBase(bytes, header, base, pages, pageSize);
    phase("snapshot_based");
    return module;
  };
}

// Pyodide with the engine importable. Tries the memory snapshot (about 1 s cold) and falls back to a plain boot plus
// the engine wheel (about 5 s) when there is none or it does not match this runtime. Returns {pyodide, mode, fallback}.
async function startPython(runtime) {
  const indexURL = runtime.pyodide_url;
  let fallback = snapshotUsable(runtime);
  let go;
  const snapshot = fallback ? null : snapshotBytes(runtime.snapshot, new Promise((resolve) => { go = resolve; }));
  snapshot?.catch(() => {}); // reported through loadPyodide's rejection below
  const [{ loadPyodide }, { default: createPyodideModule }] = await Promise.all([
    import(indexURL + "pyodide.mjs"), import(indexURL + "pyodide.asm.mjs"),
  ]);
  phase("pyodide_mjs");
  if (snapshot) {
    try {
      const stdLibURL = new URL(runtime.snapshot.stdlib, new URL(runtime.snapshot.url, self.location.href)).href;
      const loading = loadPyodide({
        indexURL, stdLibURL, _loadSnapshot: snapshot,
        createPyodideModule: freshModule(createPyodideModule, snapshot, runtime.snapshot),
      });
      setTimeout(go, 0); // by now loadPyodide has asked for the wasm and the stdlib
      const pyodide = await loading;
      const key = pyodide.runPython("import sys; getattr(sys, '_smartcat_snapshot_key', None)");
      if (key !== runtime.snapshot.key) throw new Error(`snapshot holds ${key}, the runtime wants ${runtime.snapshot.key}`);
      return { pyodide, mode: "snapshot", fallback: null };
    } catch (error) {
      fallback = String((error && error.message) || error).split("\n")[0];
      console.warn("memory snapshot not usable, booting without it:", error);
    }
  }
  const wheel = fetchBytes(runtime.engine_wheel_url, "engine wheel").then((r) => r.arrayBuffer());
  const pyodide = await loadPyodide({ indexURL });
  pyodide.unpackArchive(await wheel, "wheel");
  return { pyodide, mode: "plain", fallback };
}

async function boot() {
  const runtime = await runtimeManifest;
  phase("manifest");
  const { pyodide, mode, fallback } = await startPython(runtime);
  python = pyodide;
  Object.assign(bootInfo, { mode, fallback, python_ms: Math.round(performance.now()) });
  const worker = pyodide.pyimport("browser_py.adapters.pyodide");
  // performance.now() counts from this worker's start: boot_ms is the whole cold start, not just loadPyodide.
  hub = await worker.start_hub(self, performance.now(), JSON.stringify(runtime.engine || {}), mode);
  bootInfo.ready_ms = Math.round(performance.now());
  for (const port of ports) hub.attach(port);
}

// Firefox and WebKit leave the message out of error.stack ("fetchBytes@…" only): keep both.
function describe(error) {
  const text = String(error);
  const stack = (error && error.stack) || "";
  return stack.includes(text) ? stack : `${text}\n${stack}`;
}

boot().catch((error) => {
  console.error(error);
  bootInfo.error = describe(error);
  broadcast({ type: "engine", status: "failed", error: describe(error) });
});

// ---------------------------------------------------------------- diagnostics (tests and the benchmark)

// Same-origin pages may ask how this worker booted, how big the Python heap is, and what it fetched when (Resource
// Timing: a SharedWorker's network is otherwise invisible to page scripts and to Playwright).
const diagnostics = new BroadcastChannel("smartcat-worker-diagnostics");
diagnostics.onmessage = (event) => {
  if (!event.data || event.data.type !== "request") return;
  // A benchmark timing thousands of part PUTs asks for a bigger Resource Timing buffer (the default keeps 250).
  if (event.data.buffer) performance.setResourceTimingBufferSize(event.data.buffer);
  const resources = performance.getEntriesByType("resource").map((e) => ({
    name: e.name, type: e.initiatorType, start: e.startTime, end: e.responseEnd,
    transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize,
  }));
  if (event.data.clear) performance.clearResourceTimings();
  diagnostics.postMessage({
    type: "report",
    id: event.data.id,
    boot: bootInfo,
    time_origin: performance.timeOrigin,
    now: performance.now(),
    heap_bytes: python ? python._module.HEAPU8.buffer.byteLength : null,
    resources,
  });
};
