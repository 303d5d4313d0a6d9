// React bindings for the Smartcat uploader: useUploader() and <Uploader/>.
//
// They load the client API and the element from where the uploader is mounted (`${base}/static/client.mjs`,
// `${base}/static/element.mjs`), so a page always runs the client of the server it talks to, and the engine stays
// one SharedWorker per origin however many components use it. They only relay: the engine decides every word.
import { createElement, useEffect, useMemo, useRef, useState } from "react";

const modules = new Map();
/** One import per URL for the page's lifetime. */
function load(url) {
  if (!modules.has(url)) modules.set(url, import(/* @vite-ignore */ url));
  return modules.get(url);
}

const uploaders = new Map();
/** The page's uploader for `base` (the client module shares one per base too). */
function uploaderFor(base) {
  if (!uploaders.has(base)) {
    uploaders.set(base, load(`${base}/static/client.mjs`).then(({ createUploader }) => createUploader({ base })));
  }
  return uploaders.get(base);
}

const STARTING = { uploads: [], summary: { active: 0, percent: 0, text: "" }, engine: { type: "engine", status: "starting" } };
const CALLBACKS = { completed: "onCompleted", failed: "onFailed", "leave-hint": "onLeaveHint" };

/**
 * The uploads of this browser for `base` (where the host mounted the uploader, "/uploader" by default), kept
 * current, and the actions on them. Callbacks: onCompleted(finished), onFailed(view), onLeaveHint(view).
 */
export function useUploader({ base = "/uploader", ...callbacks } = {}) {
  const [state, setState] = useState(STARTING);
  const [uploader, setUploader] = useState(null);
  const latest = useRef(callbacks);
  latest.current = callbacks;

  useEffect(() => {
    let live = true;
    let unsubscribe = () => {};
    uploaderFor(base).then((u) => {
      if (!live) return;
      const sync = () => setState({ uploads: u.uploads(), summary: u.summary(), engine: u.engine() });
      const relays = Object.entries(CALLBACKS).map(([type, name]) => [type, (event) => latest.current[name]?.(event.detail)]);
      const listeners = [...["change", "removed", "summary", "engine"].map((type) => [type, sync]), ...relays];
      for (const [type, listener] of listeners) u.addEventListener(type, listener);
      unsubscribe = () => { for (const [type, listener] of listeners) u.removeEventListener(type, listener); };
      setUploader(u);
      sync();
    });
    return () => { live = false; unsubscribe(); };
  }, [base]);

  const actions = useMemo(() => {
    const on = (method) => (...args) => { uploaderFor(base).then((u) => u[method](...args)); };
    return { add: on("add"), pause: on("pause"), resume: on("resume"), cancel: on("cancel"), retry: on("retry"),
      dismiss: on("dismiss"), act: on("act") };
  }, [base]);

  return { ...state, ...actions, uploader };
}

/** <smartcat-uploader> as a React component: drop zone, cards, banner and toasts, rendered by the element. */
export function Uploader({ base = "/uploader", accept, compact = false, className, onCompleted, onFailed, onLeaveHint }) {
  useEffect(() => { load(`${base}/static/element.mjs`); }, [base]);
  useUploader({ base, onCompleted, onFailed, onLeaveHint });
  return createElement("smartcat-uploader", { base, accept, compact: compact ? "" : undefined, className });
}
