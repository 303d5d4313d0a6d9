// Copies the File it is given into OPFS with each named strategy and reports how long each took (bench/opfs_copy.py).
// Module SharedWorker (the engine's place) or dedicated Worker (createSyncAccessHandle exists only there).
const MiB = 1 << 20;

async function copy(root, file, variant) {
  const name = `opfs-copy-${variant}.bin`;
  const handle = await root.getFileHandle(name, { create: true });
  const started = performance.now();
  let written;
  if (variant === "sync32") {
    const access = await handle.createSyncAccessHandle();
    for (let at = 0; at < file.size; at += 32 * MiB) {
      access.write(new Uint8Array(await file.slice(at, Math.min(file.size, at + 32 * MiB)).arrayBuffer()), { at });
    }
    written = performance.now();
    access.flush();
    access.close();
  } else {
    const writable = await handle.createWritable();
    if (variant === "pipe") {
      await file.stream().pipeTo(writable, { preventClose: true });
    } else {
      const step = variant === "whole" ? file.size : Number(variant.replace("slices", "")) * MiB;
      for (let at = 0; at < file.size; at += step) await writable.write(file.slice(at, Math.min(file.size, at + step)));
    }
    written = performance.now();
    await writable.close();
  }
  const ended = performance.now();
  const size = (await handle.getFile()).size;
  await root.removeEntry(name);
  return { variant, ms: ended - started, close_ms: ended - written, complete: size === file.size };
}

async function run(file, variants, report) {
  const root = await navigator.storage.getDirectory();
  for (const variant of variants) {
    if (variant === "nested") {
      report({ variant, available: typeof Worker !== "undefined" });
      continue;
    }
    try {
      report(await copy(root, file, variant));
    } catch (error) {
      report({ variant, error: String(error) });
    }
  }
}

if ("onconnect" in self) {
  self.onconnect = (event) => {
    const port = event.ports[0];
    port.onmessage = async ({ data }) => {
      await run(data.file, data.variants, (result) => port.postMessage({ ...result, where: "shared" }));
      port.postMessage({ done: true });
    };
    port.start();
  };
} else {
  self.onmessage = async ({ data }) => run(data.file, data.variants, (result) => self.postMessage(result));
}
