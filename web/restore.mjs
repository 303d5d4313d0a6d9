// The memory snapshot is stored as its difference (XOR) from the memory a Pyodide instance holds the moment the wasm
// is instantiated: its data segments, which the browser has already downloaded inside pyodide.asm.wasm, and nothing
// else yet (the C constructors that run next write random seeds and the program's path, which differ per run and per
// host). Those ~4 MB of the heap then cost ~60 KB in the snapshot instead of ~1.4 MB. The build (snapshot.mjs) and the
// worker (worker.mjs) use these same functions; a SHA-256 of that memory, taken at build, guards the worker from
// XORing against anything else.

/** Emscripten module settings that call `seen(memory bytes)` once the wasm is instantiated, before its constructors
 * run. Wraps the `instantiateWasm` hook Pyodide's loader puts in the settings. */
export function atInstantiation(settings, seen) {
  const instantiate = settings.instantiateWasm;
  if (typeof instantiate !== "function") throw new Error("memory snapshot: Pyodide's loader set no instantiateWasm");
  return {
    ...settings,
    instantiateWasm: (imports, receive) => instantiate(imports, (instance, module) => {
      const memory = instance.exports.memory ?? imports.env.memory;
      seen(new Uint8Array(memory.buffer));
      receive(instance, module);
    }),
  };
}

/** Runs [first page, count] of the pages holding a non-zero byte among memory's first `length` bytes. */
export function basePages(memory, length, pageSize = 65536) {
  const pages = [];
  for (let page = 0; page * pageSize < length; page++) {
    const start = page * pageSize;
    const chunk = memory.subarray(start, Math.min(start + pageSize, length));
    if (!chunk.some((byte) => byte !== 0)) continue;
    const last = pages[pages.length - 1];
    if (last && last[0] + last[1] === page) last[1] += 1;
    else pages.push([page, 1]);
  }
  return pages;
}

function* ranges(pages, pageSize, length) {
  for (const [first, count] of pages) {
    yield [first * pageSize, Math.min((first + count) * pageSize, length)];
  }
}

/** Hex SHA-256 of the base's listed pages, in order. */
export async function baseSha256(memory, pages, pageSize, length) {
  const parts = [...ranges(pages, pageSize, length)];
  const joined = new Uint8Array(parts.reduce((n, [start, end]) => n + end - start, 0));
  let at = 0;
  for (const [start, end] of parts) { joined.set(memory.subarray(start, end), at); at += end - start; }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** XOR the base's listed pages into the snapshot's memory image (after its `header` bytes), in place. Applied to a
 * snapshot it makes the stored difference; applied to the difference, the snapshot again. */
export function applyBase(snapshot, header, memory, pages, pageSize) {
  const length = snapshot.length - header;
  for (const [start, end] of ranges(pages, pageSize, length)) {
    const target = snapshot.subarray(header + start, header + end);
    for (let i = 0; i < target.length; i++) target[i] ^= memory[start + i];
  }
}
