// <smartcat-uploader>: the uploader as a custom element for any page of the host (plain HTML, React, anything).
//
//   <script type="module" src="/uploader/static/element.mjs"></script>
//   <smartcat-uploader accept=".pdf,.docx" compact></smartcat-uploader>
//
// Built on the client API (client.mjs): the engine (Python, one SharedWorker per origin) decides and words every
// card, banner and toast; this element renders them in an open shadow root and posts picks and clicks back.
// Attributes: `base` (where the uploader is mounted; by default where this module was loaded from), `accept`
// (the picker's file types), `compact` (no hint, no speed row), `notifications="off"` (no completion-notification
// offer: for a host that has its own). Theming: CSS custom properties (--smartcat-*) and ::part(dropzone | banner |
// notify | input | card | bar | fill | status | actions | button | toast | notice | empty). The banner's
// `banner-actions` slot takes the host's own links ("keep working in …").
import { createUploader } from "./client.mjs";
import { NotificationOffer, refreshSubscription } from "./notify.mjs";
import { ACTION_TEXT, ELEMENT_TEXT } from "./wire.js";

/** @typedef {import("./wire.js").UploadView} UploadView */

// Where this module was served from is where the uploader is mounted: <base>/static/element.mjs.
const MODULE_BASE = new URL("..", import.meta.url).pathname.replace(/\/+$/, "");
const TOAST_MS = 15_000;
const NOTICE_MS = 10_000;

const SHELL = `
  <div class="root" part="root">
    <label class="drop" part="dropzone">
      <input class="picker" type="file" multiple>
      <span class="drop-text" part="drop-text"></span>
      <small class="drop-hint" part="drop-hint"></small>
    </label>
    <div class="banner" part="banner" role="region" hidden>
      <p class="banner-text"></p>
      <p class="banner-actions"><slot name="banner-actions"></slot><button type="button" class="banner-dismiss" part="button"></button></p>
    </div>
    <section class="notify" part="notify" hidden></section>
    <ul class="notices" part="notices" role="status" aria-live="polite"></ul>
    <ul class="toasts" part="toasts" aria-live="polite"></ul>
    <div class="announcer" aria-live="polite"></div>
    <section class="uploads" part="uploads">
      <p class="empty" part="empty"></p>
      <ul class="list" part="list"></ul>
    </section>
  </div>`;

const CARD = `
  <div class="row"><strong class="upload-name"></strong><span class="upload-size muted"></span></div>
  <div class="bar" part="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100"><div class="fill" part="fill"></div></div>
  <div class="row"><span class="upload-status" part="status"></span><span class="upload-percent"></span></div>
  <div class="row muted details"><span class="upload-bytes"></span><span class="upload-speed"></span><span class="upload-eta"></span></div>
  <div class="actions" part="actions"></div>`;

/** Only a changed text is written: each write is a layout, and most views change a number or two of a card. */
function setText(element, value) {
  if (element.textContent !== value) element.textContent = value;
}

export class SmartcatUploader extends HTMLElement {
  static observedAttributes = ["accept", "compact", "notifications"];

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    /** @type {Map<string, [string, number]>} local_id -> [phase, quarter] last read out */
    this._announced = new Map();
    this._listeners = [];
  }

  /** The client API this element renders (see client.d.ts): hosts may listen to it or act on it. */
  get uploader() {
    if (!this._uploader) this._uploader = createUploader({ base: this.getAttribute("base") ?? MODULE_BASE });
    return this._uploader;
  }

  connectedCallback() {
    if (!this._built) this._build();
    const on = (type, handler) => {
      this.uploader.addEventListener(type, handler);
      this._listeners.push([type, handler]);
    };
    on("change", (event) => {
      this._render(event.detail);
      this._offerFor(event.detail);
    });
    on("removed", (event) => this._card(event.detail.local_id)?.remove() ?? this._empty());
    on("engine", (event) => {
      this.setAttribute("engine", event.detail.status); // starting | ready | failed: hosts and tests can wait on it
      this._renderAll();
    });
    on("completed", (event) => this._toast(event.detail));
    on("notice", (event) => this._notice(event.detail.message));
    this.setAttribute("engine", this.uploader.engine().status);
    this._renderAll();
    if (this._notifications()) refreshSubscription(this.uploader.base);
  }

  disconnectedCallback() {
    for (const [type, handler] of this._listeners) this.uploader.removeEventListener(type, handler);
    this._listeners = [];
  }

  attributeChangedCallback() {
    if (this._built) this._applyAttributes();
  }

  _build() {
    this._built = true;
    const root = /** @type {ShadowRoot} */ (this.shadowRoot);
    // A linked stylesheet, not an inline <style>: pages under a CSP with style-src 'self' allow it.
    const style = document.createElement("link");
    style.rel = "stylesheet";
    style.href = `${this.uploader.base}/static/element.css`;
    const template = document.createElement("template");
    template.innerHTML = SHELL;
    root.replaceChildren(style, template.content.cloneNode(true));
    this._$ = (selector) => root.querySelector(selector);
    this._$(".drop-text").textContent = ELEMENT_TEXT.drop;
    this._$(".drop-hint").textContent = ELEMENT_TEXT.drop_hint;
    this._$(".empty").textContent = ELEMENT_TEXT.empty;
    this._$(".uploads").setAttribute("aria-label", ELEMENT_TEXT.uploads);
    this._$(".banner").setAttribute("aria-label", ELEMENT_TEXT.banner_label);
    const dismiss = this._$(".banner-dismiss");
    dismiss.textContent = ELEMENT_TEXT.got_it;
    // "Got it" is the engine's to remember: every tab stops showing the banner for that upload.
    dismiss.addEventListener("click", () => {
      this._$(".banner").hidden = true;
      this.uploader.hideBanner(this._$(".banner").dataset.localId);
    });
    const picker = this._$(".picker");
    picker.addEventListener("change", () => {
      this.uploader.add(picker.files);
      picker.value = "";
    });
    const drop = this._$(".drop");
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      this.uploader.add(event.dataTransfer.files);
    });
    this._offer = new NotificationOffer(this._$(".notify"), this.uploader.base);
    this._applyAttributes();
  }

  _notifications() {
    return this.getAttribute("notifications") !== "off";
  }

  /** The notification offer hears every card; with notifications="off" it is never made (and hidden if shown). */
  _offerFor(view) {
    if (this._notifications()) this._offer.view(view);
  }

  _applyAttributes() {
    if (!this._notifications()) this._$(".notify").hidden = true;
    const accept = this.getAttribute("accept");
    if (accept) this._$(".picker").setAttribute("accept", accept);
    else this._$(".picker").removeAttribute("accept");
    this._$(".root").classList.toggle("compact", this.hasAttribute("compact"));
  }

  _card(localId) {
    return this._$(`.list [data-local-id="${CSS.escape(localId)}"]`);
  }

  _renderAll() {
    for (const view of this.uploader.uploads()) {
      this._render(view);
      this._offerFor(view);
    }
    this._empty();
  }

  _empty() {
    this._$(".empty").hidden = this._$(".list").children.length > 0;
    const bannerView = this.uploader.uploads().find((view) => view.banner);
    const banner = this._$(".banner");
    banner.hidden = !bannerView;
    if (bannerView) {
      banner.dataset.localId = bannerView.local_id;
      setText(this._$(".banner-text"), bannerView.banner);
    }
  }

  /** @param {UploadView} view */
  _render(view) {
    let card = this._card(view.local_id);
    if (!card) {
      card = document.createElement("li");
      card.className = "upload";
      card.setAttribute("part", "card");
      card.dataset.localId = view.local_id;
      card.innerHTML = CARD;
      this._$(".list").append(card);
    }
    card.dataset.phase = view.phase;
    card.dataset.saved = String(view.saved);
    if (view.session_id) card.dataset.sessionId = view.session_id;
    const text = { name: view.file_name, size: view.size_text, status: view.label, percent: `${view.percent}%`,
      bytes: view.bytes_text, speed: view.speed_text, eta: view.eta_text };
    for (const [field, value] of Object.entries(text)) setText(card.querySelector(`.upload-${field}`), value);
    const bar = card.querySelector(".bar");
    if (bar.getAttribute("aria-valuenow") !== String(view.percent)) {
      bar.setAttribute("aria-valuenow", String(view.percent));
      bar.setAttribute("aria-label", `${view.file_name}: ${view.percent}%`);
      /** @type {HTMLElement} */ (card.querySelector(".fill")).style.transform = `scaleX(${view.percent / 100})`;
    }
    this._actions(card, view);
    this._announce(view);
    this._empty();
  }

  _actions(card, view) {
    const actions = card.querySelector(".actions");
    if (actions.dataset.actions === view.actions.join()) return;
    actions.dataset.actions = view.actions.join();
    actions.replaceChildren(...view.actions.map((action) => {
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("part", "button");
      button.dataset.action = action;
      button.textContent = ACTION_TEXT[action] || action;
      button.addEventListener("click", () => this._act(view.local_id, action, button));
      return button;
    }));
  }

  _act(localId, action, button) {
    if (action === "copy") this._copyLink(localId, button);
    else if (action === "choose") this._chooseFor(localId);
    else this.uploader.act(localId, action);
  }

  // The card action "choose": a picker for that upload only; the engine checks it is the same file.
  _chooseFor(localId) {
    const input = document.createElement("input");
    input.type = "file";
    input.addEventListener("change", () => {
      if (input.files.length) this.uploader.choose(localId, input.files[0]);
    });
    input.click();
  }

  async _copyLink(localId, button) {
    const view = this.uploader.uploads().find((v) => v.local_id === localId);
    if (!view?.link) return;
    const link = new URL(view.link, location.href).href;
    try {
      await navigator.clipboard.writeText(link);
      button.textContent = ELEMENT_TEXT.link_copied;
    } catch {
      prompt(ELEMENT_TEXT.copy_prompt, link); // clipboard refused (no permission): let the user copy it by hand
    }
    setTimeout(() => { button.textContent = ACTION_TEXT.copy; }, 2000);
  }

  // Screen readers hear state changes and every quarter of progress, not every part.
  _announce(view) {
    const quarter = Math.floor(view.percent / 25);
    const [phase, lastQuarter] = this._announced.get(view.local_id) || [null, 0];
    let text = null;
    if (phase !== view.phase) text = `${view.file_name}: ${view.label}`;
    else if (view.phase === "uploading" && quarter > lastQuarter && quarter < 4) text = `${view.file_name}: ${view.percent}%`;
    this._announced.set(view.local_id, [view.phase, quarter]);
    if (!text) return;
    const announcer = this._$(".announcer");
    announcer.textContent = "";
    requestAnimationFrame(() => { announcer.textContent = text; });
  }

  _toast(finished) {
    const item = document.createElement("li");
    item.className = "toast";
    item.setAttribute("part", "toast");
    item.textContent = finished.message;
    if (finished.link) {
      const open = document.createElement("a");
      open.href = finished.link;
      open.textContent = ELEMENT_TEXT.open;
      item.append(" ", open);
    }
    this._$(".toasts").append(item);
    setTimeout(() => item.remove(), TOAST_MS);
  }

  _notice(message) {
    const item = document.createElement("li");
    item.setAttribute("part", "notice");
    item.textContent = message;
    this._$(".notices").append(item);
    setTimeout(() => item.remove(), NOTICE_MS);
  }
}

if (!customElements.get("smartcat-uploader")) customElements.define("smartcat-uploader", SmartcatUploader);
