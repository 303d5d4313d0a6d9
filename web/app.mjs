// The standalone app's page glue: one consumer of <smartcat-uploader> (element.mjs renders the uploads, banner,
// toasts and notification offer) plus what belongs to this page alone: the header's engine status and upload
// indicator, and its two pages in one document. Wording comes from the Python engine (wire.js).
import "./element.mjs";
import { ENGINE_TEXT } from "./wire.js";

const $ = (selector) => document.querySelector(selector);

const uploader = /** @type {import("./element.mjs").SmartcatUploader} */ ($("smartcat-uploader")).uploader;
const engine = $("#engine");
engine.dataset.mode = uploader.mode;
if (uploader.mode === "shared") engine.dataset.lifetime = uploader.extendedLifetime ? "extended" : "page";

// The header says how the engine is doing; tests and the benchmark read its data-* (instance, boot time) too.
function renderEngine(message) {
  engine.dataset.state = message.status;
  if (message.instance) engine.dataset.instance = message.instance;
  if (message.boot_ms != null) engine.dataset.bootMs = String(message.boot_ms);
  engine.textContent = ENGINE_TEXT[message.status] || message.status;
  if (message.status === "failed") console.error(message.error);
}
renderEngine(uploader.engine());
uploader.addEventListener("engine", (event) => renderEngine(event.detail));
uploader.addEventListener("error", (event) => {
  console.error("upload engine:", event.detail.message);
  engine.textContent = event.detail.message;
  engine.dataset.state = "error";
});

// "2 uploads · 45%" on every page of the app.
const indicator = $("#indicator");
function renderSummary(summary) {
  indicator.hidden = !summary.text;
  indicator.textContent = summary.text;
}
renderSummary(uploader.summary());
uploader.addEventListener("summary", (event) => renderSummary(event.detail));

// ---------------------------------------------------------------- two app pages, one document

function showPage(path) {
  const page = path.endsWith("/projects") ? "projects" : "upload"; // under any prefix
  document.body.dataset.page = page; // style.css hides the element's drop zone on Projects
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
