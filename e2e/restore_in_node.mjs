// Restores the built memory snapshot in Node the way web/worker.mjs does (its pages into a zeroed buffer, the
// wasm's instantiation memory XORed back with web/restore.mjs, the trimmed stdlib beside it), then runs the Python
// given as the last argument and prints its result, or the error it raised, as one JSON line.
//
//   node e2e/restore_in_node.mjs RUNTIME_DIR PYTHON_CODE
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { applyBase, atInstantiation, baseSha256 } from "../web/restore.mjs";

const [runtimeDir, code] = process.argv.slice(2);
const runtime = JSON.parse(readFileSync(join(runtimeDir, "runtime.json"), "utf8"));
const local = (url) => join(runtimeDir, url.replace(/^\/runtime\//, ""));
const info = runtime.snapshot;
const indexURL = local(runtime.pyodide_url);
const stored = readFileSync(local(info.url));
const bytes = new Uint8Array(info.size);
let at = 0;
for (const [first, count] of info.pages) {
  const start = first * info.page_size;
  const length = Math.min(count * info.page_size, info.size - start);
  bytes.set(stored.subarray(at, at + length), start);
  at += length;
}
const header = new DataView(bytes.buffer).getUint32(4, true);
const { loadPyodide } = await import(pathToFileURL(join(indexURL, "pyodide.mjs")).href);
const { default: createPyodideModule } = await import(pathToFileURL(join(indexURL, "pyodide.asm.mjs")).href);
let base = null;
const pyodide = await loadPyodide({
  indexURL: indexURL + "/",
  stdLibURL: join(local(info.url), "..", info.stdlib),
  _loadSnapshot: bytes,
  createPyodideModule: async (settings) => {
    const module = await createPyodideModule(atInstantiation(settings, (memory) => { base = memory.slice(); }));
    const { pages, page_size: pageSize, sha256 } = info.base;
    const found = await baseSha256(base, pages, pageSize, bytes.length - header);
    if (found !== sha256) throw new Error(`fresh memory ${found}, the build's ${sha256}`);
    applyBase(bytes, header, base, pages, pageSize);
    return module;
  },
});
try {
  console.log(JSON.stringify({ result: pyodide.runPython(code) }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error.message).trim().split("\n").slice(-4).join("\n") }));
}
