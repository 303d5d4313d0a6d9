// Page glue: start the upload worker at once, post picks and clicks, render the view models it sends.
// Wording and state decisions come from the Python engine; this file only renders them.
const WORKER_URL = "/static/worker.mjs";
const WORKER_NAME = "smartcat-uploader";
const views = new Map();

const $ = (selector) => document.querySelector(selector);

// One engine per origin. Normally a SharedWorker that every tab talks to. Without SharedWorker, the tabs elect one
// of them with a Web Lock to run the engine in a dedicated Worker; the others talk to it over a BroadcastChannel,
// and when that tab closes the next one takes over (and resumes from OPFS).
function connectEngine(onMessage) {
  if (typeof SharedWorker === "function") {
    try {
      const shared = new SharedWorker(WORKER_URL, { type: "module", name: WORKER_NAME });
      shared.port.onmessage = (event) => onMessage(event.data);
      $("#engine").dataset.mode = "shared";
      return (message) => shared.port.postMessage(message);
    } catch (error) {
      console.warn("SharedWorker failed to start; using a dedicated worker", error);
    }
  }
  $("#engine").dataset.mode = "dedicated";
  const channel = new BroadcastChannel(WORKER_NAME);
  let dedicated = null;
  channel.onmessage = (event) => {
    const { to, data } = event.data;
    if (to === "pages") onMessage(data);
    else if (to === "engine" && dedicated) dedicated.postMessage(data);
  };
  navigator.locks.request(`${WORKER_NAME}-engine`, () => new Promise(() => {
    // Held until this tab closes: this tab now runs the engine for all of them.
    dedicated = new Worker(WORKER_URL, { type: "module", name: WORKER_NAME });
    dedicated.onmessage = (event) => {
      onMessage(event.data);
      channel.postMessage({ to: "pages", data: event.data });
    };
    dedicated.postMessage({ type: "hello" });
  }));
  return (message) => {
    if (message.type === "bye") return; // the engine has one port here (its own scope): never detach it
    if (dedicated) dedicated.postMessage(message);
    else channel.postMessage({ to: "engine", data: message });
  };
}

const port = { postMessage: connectEngine(receive) };

function receive(data) {
  const message = JSON.parse(data);
  if (message.type === "engine") {
    renderEngine(message);
    for (const view of message.uploads || []) views.set(view.local_id, view);
    renderUploads();
  } else if (message.type === "upload") {
    views.set(message.view.local_id, message.view);
    renderUploads();
    // Other page modules (notifications) react to uploads without knowing the worker protocol.
    dispatchEvent(new CustomEvent("upload-view", { detail: message.view }));
  } else if (message.type === "removed") {
    views.delete(message.local_id);
    renderUploads();
  } else if (message.type === "notice") {
    showNotice(message.message);
  } else if (message.type === "error") {
    console.error("upload engine:", message.message);
    $("#engine").textContent = message.message;
    $("#engine").dataset.state = "error";
  }
}
port.postMessage({ type: "hello" });
addEventListener("pagehide", () => port.postMessage({ type: "bye" }));
// The worker hears the network come and go too, but pages hear it first (and in every browser).
addEventListener("online", () => port.postMessage({ type: "connectivity", online: true }));
addEventListener("offline", () => port.postMessage({ type: "connectivity", online: false }));

function showNotice(text) {
  const item = document.createElement("li");
  item.textContent = text;
  $("#notices").append(item);
  setTimeout(() => item.remove(), 10_000);
}

function renderEngine(message) {
  const el = $("#engine");
  el.dataset.state = message.status;
  if (message.instance) el.dataset.instance = message.instance;
  if (message.boot_ms != null) el.dataset.bootMs = String(message.boot_ms);
  el.textContent = {
    starting: "Starting upload engine…",
    ready: "Upload engine ready",
    failed: "Upload engine failed to start",
  }[message.status] || message.status;
  if (message.status === "failed") console.error(message.error);
}

// ---------------------------------------------------------------- picking files

function addFiles(files) {
  if (files.length) port.postMessage({ type: "add", files: [...files] });
}

$("#file-input").addEventListener("change", (event) => {
  addFiles(event.target.files);
  event.target.value = "";
});
const drop = $("#drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  addFiles(event.dataTransfer.files);
});

// ---------------------------------------------------------------- rendering uploads

const units = ["B", "KB", "MB", "GB", "TB"];
function bytes(n) {
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}
function duration(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s left`;
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

const actionText = { pause: "Pause", resume: "Resume", retry: "Retry", cancel: "Cancel", dismiss: "Dismiss" };

function renderUploads() {
  const list = $("#upload-list");
  $("#empty").hidden = views.size > 0;
  for (const view of views.values()) {
    let item = list.querySelector(`[data-local-id="${view.local_id}"]`);
    if (!item) {
      item = document.createElement("li");
      item.className = "upload";
      item.dataset.localId = view.local_id;
      item.innerHTML = `
        <div class="row"><strong class="upload-name"></strong><span class="upload-size muted"></span></div>
        <div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100"><div class="fill"></div></div>
        <div class="row"><span class="upload-status"></span><span class="upload-percent"></span></div>
        <div class="row muted"><span class="upload-speed"></span><span class="upload-eta"></span></div>
        <div class="actions"></div>`;
      list.prepend(item);
    }
    item.dataset.phase = view.phase;
    item.querySelector(".upload-name").textContent = view.file_name;
    item.querySelector(".upload-size").textContent = bytes(view.size);
    item.querySelector(".upload-status").textContent = view.label;
    item.querySelector(".upload-percent").textContent = `${view.percent}%`;
    item.querySelector(".upload-speed").textContent = view.speed_bps ? `${bytes(view.speed_bps)}/s` : "";
    item.querySelector(".upload-eta").textContent = duration(view.eta_seconds);
    const bar = item.querySelector(".bar");
    bar.setAttribute("aria-valuenow", String(view.percent));
    bar.setAttribute("aria-label", `${view.file_name}: ${view.percent}%`);
    item.querySelector(".fill").style.width = `${view.percent}%`;
    const actions = item.querySelector(".actions");
    const wanted = view.actions.concat(["completed", "cancelled", "failed"].includes(view.phase) ? ["dismiss"] : []);
    if (actions.dataset.actions !== wanted.join()) {
      actions.dataset.actions = wanted.join();
      actions.replaceChildren(...wanted.map((action) => {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.action = action;
        button.textContent = actionText[action] || action;
        button.addEventListener("click", () => port.postMessage({ type: "action", local_id: view.local_id, action }));
        return button;
      }));
    }
  }
  for (const item of list.querySelectorAll("[data-local-id]")) {
    if (!views.has(item.dataset.localId)) item.remove();
  }
}

// ---------------------------------------------------------------- two app pages, one document

function showPage(path) {
  const page = path.startsWith("/projects") ? "projects" : "upload";
  for (const section of document.querySelectorAll("[data-page-view]")) {
    section.hidden = section.dataset.pageView !== page;
  }
  for (const link of document.querySelectorAll("nav [data-page]")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `Smartcat — ${page === "projects" ? "Projects" : "Uploads"}`;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-route]");
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey || link.target) return;
  event.preventDefault();
  history.pushState({}, "", link.getAttribute("href"));
  showPage(location.pathname);
});
addEventListener("popstate", () => showPage(location.pathname));
showPage(location.pathname);
