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
zeroFreeMemory(pyodide._module);
const snapshot = pyodide.makeMemorySnapshot();
writeFileSync(outFile, snapshot);
console.log(JSON.stringify({ bytes: snapshot.length, ...JSON.parse(report) }));

// Memory the build freed (compiler and import temporaries) still holds its old bytes, which the snapshot would carry
// and every first visit download: take every free block from the allocator without growing the heap (dlmalloc's
// footprint limit), zero it and give it back. About 8% off the compressed snapshot. Skipped if the build lacks them.
function zeroFreeMemory(module) {
  const { _malloc: malloc, _free: free, _malloc_footprint: footprint, _malloc_set_footprint_limit: limit } = module;
  if (![malloc, free, footprint, limit].every((f) => typeof f === "function")) return;
  const heapBytes = module.HEAPU8.length;
  limit(footprint());
  const blocks = [];
  try {
    for (let size = 1 << 24; size >= 16;) {
      const at = malloc(size);
      if (!at) { size >>= 1; continue; }
      module.HEAPU8.fill(0, at, at + size);
      blocks.push(at);
    }
  } finally {
    for (const at of blocks) free(at);
    limit(-1 >>> 0); // no limit again
  }
  if (module.HEAPU8.length !== heapBytes) throw new Error("zeroing free memory grew the heap");
}
