// The page of bench/opfs_copy.py: hands the picked File to a module SharedWorker (where the engine copies it) and,
// for reference, to a dedicated Worker (the only place createSyncAccessHandle exists); the bench reads window.__copy.
const shared = new SharedWorker("opfs-copy-worker.mjs", { type: "module", name: "opfs-copy" });
window.__copy = { runs: [], done: false, error: null };
shared.port.onmessage = (event) => {
  if (event.data.done) window.__copy.done = true;
  else window.__copy.runs.push(event.data);
};
shared.port.start();

async function dedicated(file) {
  const worker = new Worker("opfs-copy-worker.mjs", { type: "module" });
  try {
    return await new Promise((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.postMessage({ file, variants: ["sync32"] });
    });
  } finally {
    worker.terminate();
  }
}

document.getElementById("file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  const variants = new URLSearchParams(location.search).get("variants").split(",");
  window.__copy = { runs: [], done: false, error: null };
  try {
    if (variants.includes("dedicated")) window.__copy.runs.push({ ...(await dedicated(file)), where: "dedicated" });
    shared.port.postMessage({ file, variants: variants.filter((v) => v !== "dedicated") });
  } catch (error) {
    window.__copy.error = String(error);
  }
});
