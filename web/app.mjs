// Page glue: start the upload worker at once, post picks and clicks, render the view models it sends.
// Wording and state decisions come from the Python engine; this file only renders them. The shapes of what the
// worker sends are in wire.js (generated from the Python types).
import { createUploader } from "./client.mjs";
import { ACTION_TEXT, ENGINE_TEXT } from "./wire.js";

/** @typedef {import("./wire.js").UploadView} UploadView */
/** @typedef {import("./wire.js").WorkerMessage} WorkerMessage */

/** @type {Map<string, UploadView>} */
const views = new Map();

const $ = (selector) => document.querySelector(selector);

// One engine per origin, reached through the client API (client.mjs): it connects, says hello and bye, and relays
// the network's comings and goings; this page renders what the engine sends.
const uploader = createUploader();
$("#engine").dataset.mode = uploader.mode;
if (uploader.mode === "shared") $("#engine").dataset.lifetime = uploader.extendedLifetime ? "extended" : "page";
const port = { postMessage: (message) => uploader.post(message) };
uploader.addEventListener("message", (event) => receive(event.detail));

/** @param {WorkerMessage | {type: "engine", status: string, error?: string}} message */
function receive(message) {
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
  } else if (message.type === "summary") {
    renderSummary(message.summary);
  } else if (message.type === "completed") {
    showToast(message);
  } else if (message.type === "error") {
    console.error("upload engine:", message.message);
    $("#engine").textContent = message.message;
    $("#engine").dataset.state = "error";
  }
}

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
  el.textContent = ENGINE_TEXT[message.status] || message.status;
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
// The card action "choose": a picker for that upload only; the engine checks it is the same file.
function chooseFileFor(localId) {
  const input = document.createElement("input");
  input.type = "file";
  input.addEventListener("change", () => {
    if (input.files.length) port.postMessage({ type: "choose", local_id: localId, files: [input.files[0]] });
  });
  input.click();
}

const drop = $("#drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  addFiles(event.dataTransfer.files);
});

// ---------------------------------------------------------------- rendering uploads

const announced = new Map(); // local_id -> [phase, quarter] last read out by the live region

function announce(text) {
  const el = $("#announcer");
  el.textContent = "";
  requestAnimationFrame(() => { el.textContent = text; });
}

// Screen readers hear state changes and every quarter of progress, not every part.
function announceProgress(view) {
  const quarter = Math.floor(view.percent / 25);
  const [phase, lastQuarter] = announced.get(view.local_id) || [null, 0];
  if (phase !== view.phase) announce(`${view.file_name}: ${view.label}`);
  else if (view.phase === "uploading" && quarter > lastQuarter && quarter < 4) announce(`${view.file_name}: ${view.percent}%`);
  announced.set(view.local_id, [view.phase, quarter]);
}

async function copyLink(view, button) {
  const link = new URL(view.link, location.href).href;
  try {
    await navigator.clipboard.writeText(link);
    button.textContent = "Link copied";
  } catch {
    prompt("Copy this link", link); // clipboard refused (no permission): let the user copy it by hand
  }
  setTimeout(() => { button.textContent = ACTION_TEXT.copy; }, 2000);
}

function renderBanner() {
  const banner = $("#leave-banner");
  const view = [...views.values()].find((v) => v.banner);
  banner.hidden = !view;
  if (view) {
    banner.dataset.localId = view.local_id;
    $("#leave-banner-text").textContent = view.banner;
  }
}
// "Got it" is the engine's to remember: every tab stops showing the banner for that upload.
$("#leave-banner-dismiss").addEventListener("click", () => {
  const localId = $("#leave-banner").dataset.localId;
  $("#leave-banner").hidden = true;
  port.postMessage({ type: "action", local_id: localId, action: "hide-banner" });
});

function renderSummary(summary) {
  const indicator = $("#indicator");
  indicator.hidden = !summary.text;
  indicator.textContent = summary.text;
}

function showToast(message) {
  const item = document.createElement("li");
  item.className = "toast";
  item.textContent = message.message;
  if (message.link) {
    const open = document.createElement("a");
    open.href = message.link;
    open.textContent = "Open";
    item.append(" ", open);
  }
  $("#toasts").append(item);
  setTimeout(() => item.remove(), 15_000);
}

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
        <div class="row muted"><span class="upload-bytes"></span><span class="upload-speed"></span><span class="upload-eta"></span></div>
        <div class="actions"></div>`;
      list.append(item);
    }
    item.dataset.phase = view.phase;
    item.dataset.saved = String(view.saved);
    if (view.session_id) item.dataset.sessionId = view.session_id;
    item.querySelector(".upload-name").textContent = view.file_name;
    item.querySelector(".upload-size").textContent = view.size_text;
    item.querySelector(".upload-status").textContent = view.label;
    item.querySelector(".upload-percent").textContent = `${view.percent}%`;
    item.querySelector(".upload-bytes").textContent = view.bytes_text;
    item.querySelector(".upload-speed").textContent = view.speed_text;
    item.querySelector(".upload-eta").textContent = view.eta_text;
    const bar = item.querySelector(".bar");
    bar.setAttribute("aria-valuenow", String(view.percent));
    bar.setAttribute("aria-label", `${view.file_name}: ${view.percent}%`);
    item.querySelector(".fill").style.width = `${view.percent}%`;
    const actions = item.querySelector(".actions");
    const wanted = view.actions;
    if (actions.dataset.actions !== wanted.join()) {
      actions.dataset.actions = wanted.join();
      actions.replaceChildren(...wanted.map((action) => {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.action = action;
        button.textContent = ACTION_TEXT[action] || action;
        button.addEventListener("click", () => {
          const current = views.get(view.local_id) || view;
          if (action === "copy") copyLink(current, button);
          else if (action === "choose") chooseFileFor(view.local_id);
          else port.postMessage({ type: "action", local_id: view.local_id, action });
        });
        return button;
      }));
    }
  }
  for (const item of list.querySelectorAll("[data-local-id]")) {
    if (!views.has(item.dataset.localId)) item.remove();
  }
  for (const view of views.values()) announceProgress(view);
  renderBanner();
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
  if (link.hash) document.querySelector(link.hash)?.scrollIntoView();
});
addEventListener("popstate", () => showPage(location.pathname));
showPage(location.pathname);
