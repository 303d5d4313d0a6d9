// Build step (Node): boot Pyodide from the exact files the browser will load, install and import the engine, and
// write a memory snapshot of that warm interpreter. The worker restores it in well under a second instead of
// paying ~4-5 s for CPython to compile its standard library on every cold start (see web/build_runtime.py).
//
//   node web/snapshot.mjs INDEX_DIR WHEEL OUT_FILE KEY
//
// Constraints of Pyodide snapshots this respects: no loadPackage() before the snapshot (unpackArchive instead), no
// live JS objects held by Python, and the same pyodide.asm.* and python_stdlib.zip bytes at build and at restore.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [indexDir, wheelPath, outFile, key] = process.argv.slice(2);
if (!key) {
  console.error("usage: node web/snapshot.mjs INDEX_DIR WHEEL OUT_FILE KEY");
  process.exit(2);
}
const indexURL = indexDir.endsWith("/") ? indexDir : indexDir + "/";
const { loadPyodide } = await import(pathToFileURL(join(indexURL, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL, _makeSnapshot: true });
const wheel = readFileSync(wheelPath);
pyodide.unpackArchive(new Uint8Array(wheel.buffer, wheel.byteOffset, wheel.byteLength), "wheel");
pyodide.globals.set("SNAPSHOT_KEY", key);
// Import the adapter (required) and every other engine module (best effort): files unpacked before the snapshot are
// gone after a restore, so only modules already imported here can be used without reinstalling the wheel.
const report = pyodide.runPython(`
import importlib, json, pkgutil, sys
import browser_py, wire
import browser_py.adapters.pyodide
skipped = {}
for package in (browser_py, wire):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name in sys.modules:
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # e.g. CPython-only modules left out of the browser wheel
            skipped[info.name] = f"{type(exc).__name__}: {exc}"
sys._smartcat_snapshot_key = SNAPSHOT_KEY
del SNAPSHOT_KEY
json.dumps({"modules": sorted(m for m in sys.modules if m.startswith(("browser_py", "wire"))), "skipped": skipped})
`);
const snapshot = pyodide.makeMemorySnapshot();
writeFileSync(outFile, snapshot);
console.log(JSON.stringify({ bytes: snapshot.length, ...JSON.parse(report) }));
