// Build step (Node): boot Pyodide from the exact files the browser will load, install and import the engine, and
// write a memory snapshot of that warm interpreter. The worker restores it in well under a second instead of
// paying ~4-5 s for CPython to compile its standard library on every cold start (see web/build_runtime.py).
//
//   node web/snapshot.mjs INDEX_DIR WHEEL OUT_SNAPSHOT OUT_STDLIB KEY
//
// Besides the snapshot it writes the standard library the snapshot restores with, trimmed to the modules imported
// by then (plus every codec), and it stores the snapshot as its difference (XOR) from the memory a fresh
// instance has before the restore (the wasm's data segments): the worker XORs that memory back in (restore.mjs).
// Constraints of Pyodide snapshots this respects: no loadPackage() before the snapshot (unpackArchive instead), no
// live JS objects held by Python, and the same pyodide.asm.* and stdlib zip bytes at build and at restore.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { applyBase, atInstantiation, basePages, baseSha256 } from "./restore.mjs";

const [indexDir, wheelPath, outFile, stdlibFile, key] = process.argv.slice(2);
if (!key) {
  console.error("usage: node web/snapshot.mjs INDEX_DIR WHEEL OUT_SNAPSHOT OUT_STDLIB KEY");
  process.exit(2);
}
const BASE_PAGE = 65536;
const indexURL = indexDir.endsWith("/") ? indexDir : indexDir + "/";
const { loadPyodide } = await import(pathToFileURL(join(indexURL, "pyodide.mjs")).href);
const { default: createPyodideModule } = await import(pathToFileURL(join(indexURL, "pyodide.asm.mjs")).href);
// Code compiled for the snapshot without column tables (tracebacks point at lines, not columns) and with -OO (no
// docstrings, no asserts): the heap the browser downloads is ~17% smaller. The restored interpreter keeps both flags.
const PYTHON_ENV = { PYTHONNODEBUGRANGES: "1", PYTHONOPTIMIZE: "2" };
const pyodide = await loadPyodide({ indexURL, _makeSnapshot: true, env: PYTHON_ENV });
const wheel = readFileSync(wheelPath);
pyodide.unpackArchive(new Uint8Array(wheel.buffer, wheel.byteOffset, wheel.byteLength), "wheel");
pyodide.globals.set("SNAPSHOT_KEY", key);
// Import the adapter (required) and every other engine module (best effort): files unpacked before the snapshot are
// gone after a restore, so only modules already imported here can be used without reinstalling the wheel.
const report = JSON.parse(pyodide.runPython(`
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
`));
Object.assign(report, trimStdlib(pyodide, stdlibFile));
zeroFreeMemory(pyodide._module);
const snapshot = pyodide.makeMemorySnapshot();
// A fresh instance restoring this snapshot with the trimmed stdlib: proves the pair boots, and gives the memory its
// wasm instantiation leaves (restore.mjs), which the stored snapshot is the difference from.
let base = null;
const restored = await loadPyodide({
  indexURL,
  stdLibURL: stdlibFile,
  _loadSnapshot: snapshot.slice(),
  createPyodideModule: (settings) => createPyodideModule(atInstantiation(settings, (memory) => {
    base = memory.slice();
  })),
});
const restoredKey = restored.runPython("import sys; sys._smartcat_snapshot_key");
if (restoredKey !== key) throw new Error(`the restored snapshot holds ${restoredKey}, not ${key}`);
const header = new DataView(snapshot.buffer, snapshot.byteOffset).getUint32(4, true);
const length = snapshot.length - header;
const pages = basePages(base, length, BASE_PAGE);
const sha256 = await baseSha256(base, pages, BASE_PAGE, length);
applyBase(snapshot, header, base, pages, BASE_PAGE);
writeFileSync(outFile, snapshot);
console.log(JSON.stringify({
  bytes: snapshot.length, base: { header, page_size: BASE_PAGE, pages, sha256 }, ...report,
}));

// The standard library the worker downloads: only the modules imported by now (Pyodide's boot, the engine and what
// they import), every codec (looked up by name at run time), written to stdlibFile and put in place of the full zip
// before the snapshot, so the snapshot's zipimport directory is the trimmed zip's. A module left out that something
// imports later fails with a ModuleNotFoundError naming it and saying why.
function trimStdlib(py, target) {
  const scratch = "/tmp/trimmed-stdlib.zip"; // in Pyodide's own file system
  py.globals.set("TRIMMED_STDLIB", scratch);
  const result = py.runPython(`
import json, sys, zipfile, zipimport
def _trim(target):
    archive = next(p for p in sys.path if p.endswith(".zip"))
    prefix = archive + "/"
    used = {m.__file__.removeprefix(prefix) for m in list(sys.modules.values())
            if (getattr(m, "__file__", None) or "").startswith(prefix)}
    with zipfile.ZipFile(archive) as full:
        members = full.infolist()
        modules = {i.filename: i.filename.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                   for i in members if i.filename.endswith(".py")}
        keep = {name for name in modules if name in used or name.startswith("encodings/")}
        dirs = {name.rsplit("/", 1)[0] + "/" for name in keep if "/" in name}
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as trimmed:
            for info in members:
                if info.filename in keep or info.filename in dirs:
                    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                    copy.external_attr = info.external_attr
                    trimmed.writestr(copy, full.read(info), compress_type=zipfile.ZIP_STORED)
    removed = frozenset(modules[name] for name in modules if name not in keep)
    with open(target, "rb") as source, open(archive, "wb") as sink:
        sink.write(source.read())
    sys.path_importer_cache[archive].invalidate_caches()  # re-reads the (now trimmed) zip's directory

    class TrimmedStdlib:
        """Names a module this build left out of the standard library instead of a bare "No module named"."""

        @staticmethod
        def find_spec(name, path=None, target=None):
            if name in removed:
                raise ModuleNotFoundError(
                    f"{name} is not in this runtime's standard library: the build keeps only the modules the engine"
                    " had imported when it made the memory snapshot (web/snapshot.mjs)", name=name)
            return None

    sys.meta_path.append(TrimmedStdlib)
    return {"stdlib_kept": len(keep), "stdlib_removed": len(removed)}
_result = json.dumps(_trim(TRIMMED_STDLIB))
del _trim, TRIMMED_STDLIB
_result`);
  py.runPython("del _result");
  writeFileSync(target, py.FS.readFile(scratch));
  py.FS.unlink(scratch);
  return JSON.parse(result);
}

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
