// SharedWorker glue: boot Pyodide from this origin, install the engine wheel, hand every page port to Python.
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

function broadcast(message) {
  for (const port of ports) port.postMessage(JSON.stringify(message));
}

async function boot() {
  const started = performance.now();
  const runtime = await (await fetch("/api/runtime", { credentials: "same-origin" })).json();
  const { loadPyodide } = await import(runtime.pyodide_url + "pyodide.mjs");
  const wheel = fetch(runtime.engine_wheel_url).then((r) => {
    if (!r.ok) throw new Error(`engine wheel: HTTP ${r.status}`);
    return r.arrayBuffer();
  });
  const pyodide = await loadPyodide({ indexURL: runtime.pyodide_url });
  pyodide.unpackArchive(await wheel, "wheel");
  const worker = pyodide.pyimport("browser_py.adapters.pyodide");
  hub = await worker.start_hub(self, performance.now() - started);
  for (const port of ports) hub.attach(port);
}

boot().catch((error) => {
  console.error(error);
  broadcast({ type: "engine", status: "failed", error: String(error && error.stack || error) });
});
