// TypeScript declarations of web/client.mjs, the uploader's client API. The shapes it carries (UploadView, Summary,
// the worker's messages) are generated from the Python types into wire.d.ts.
import type { Action, EngineReady, PageMessage, Summary, UploadFinished, UploadView, WorkerMessage } from "./wire.js";

export type { Action, Summary, UploadFinished, UploadView } from "./wire.js";

/** The engine's state: starting, ready (with every upload's card), or failed to start (with the reason). */
export type EngineState = EngineReady | { readonly type: "engine"; readonly status: "starting" | "failed"; readonly error?: string };

/** What each event's `detail` is. */
export interface UploaderEventMap {
  /** An upload's card changed (or appeared): render it. */
  change: CustomEvent<UploadView>;
  /** An upload has just completed (once per upload, in every tab): toast it. `link` is under the base. */
  completed: CustomEvent<UploadFinished>;
  /** An upload now needs the user ("Action needed: …"; the card's `actions` say what they can do). */
  failed: CustomEvent<UploadView>;
  /** The "you can leave" banner applies to this upload (`banner` holds its words). */
  "leave-hint": CustomEvent<UploadView>;
  /** An upload's card is gone (dismissed or cancelled). */
  removed: CustomEvent<{ readonly local_id: string }>;
  /** The indicator for every page: "2 uploads · 45%" ("" when nothing is going on). */
  summary: CustomEvent<Summary>;
  /** A sentence for the user that belongs to no card ("«name» is already in your uploads"). */
  notice: CustomEvent<{ readonly type: "notice"; readonly message: string; readonly local_id: string | null }>;
  /** The engine started, is ready, or failed to start. */
  engine: CustomEvent<EngineState>;
  /** Something failed in the engine that no card explains. */
  error: CustomEvent<{ readonly type: "error"; readonly message: string }>;
  /** Every message from the engine, as it came (for pages that render everything themselves). */
  message: CustomEvent<WorkerMessage | EngineState>;
}

export declare class Uploader extends EventTarget {
  /** Where the uploader is mounted ("" at the origin's root). */
  readonly base: string;
  /** "shared": a SharedWorker; "dedicated": one tab runs the engine for all (no SharedWorker in this browser). */
  readonly mode: "shared" | "dedicated";
  /** The browser keeps the engine running for a few minutes after the last tab closes. */
  readonly extendedLifetime: boolean;
  add(files: FileList | Iterable<File>): void;
  pause(id: string): void;
  resume(id: string): void;
  cancel(id: string): void;
  retry(id: string): void;
  dismiss(id: string): void;
  hideBanner(id: string): void;
  choose(id: string, file: File): void;
  act(id: string, action: Action | "hide-banner"): void;
  post(message: PageMessage | { type: string; [field: string]: unknown }): void;
  uploads(): UploadView[];
  summary(): Summary;
  engine(): EngineState;
  addEventListener<K extends keyof UploaderEventMap>(
    type: K,
    listener: (event: UploaderEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof UploaderEventMap>(
    type: K,
    listener: (event: UploaderEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

export declare const WORKER_NAME: string;

/** The uploader for `base` (e.g. "/uploader"); the same object for the same base: one engine per origin. */
export declare function createUploader(options?: { base?: string }): Uploader;

export declare function connectEngine(
  workerUrl: string,
  onMessage: (data: string) => void,
): { post: (message: object) => void; mode: "shared" | "dedicated"; extendedLifetime: boolean };
