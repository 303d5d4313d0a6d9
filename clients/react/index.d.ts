// Types of @smartcat/uploader-react. The shapes (UploadView, Summary …) are the uploader's own, generated from its
// Python types into web/wire.d.ts and re-exported by web/client.d.ts.
import type { ReactElement } from "react";
import type { Action, EngineState, Summary, UploadFinished, Uploader as Client, UploadView } from "../../web/client.js";

export type { Action, EngineState, Summary, UploadFinished, UploadView };

export interface UploaderCallbacks {
  /** An upload has just completed (once, in every tab). */
  onCompleted?: (finished: UploadFinished) => void;
  /** An upload now needs the user ("Action needed: …"). */
  onFailed?: (view: UploadView) => void;
  /** The "you can leave" hint applies to this upload (`view.banner` holds its words). */
  onLeaveHint?: (view: UploadView) => void;
}

export interface UseUploaderOptions extends UploaderCallbacks {
  /** Where the host mounted the uploader ("/uploader" by default; "" at the origin's root). */
  base?: string;
}

/** The uploads, kept current, and the client's actions (they wait for the client to load). */
export interface UseUploader extends Pick<Client, "add" | "pause" | "resume" | "cancel" | "retry" | "dismiss" | "act"> {
  uploads: UploadView[];
  summary: Summary;
  engine: EngineState;
  /** The client API once loaded (null before). */
  uploader: Client | null;
}

export declare function useUploader(options?: UseUploaderOptions): UseUploader;

export interface UploaderProps extends UploaderCallbacks {
  base?: string;
  /** The picker's file types (the `accept` attribute of <input type=file>). */
  accept?: string;
  /** Smaller cards without the hint and the speed row. */
  compact?: boolean;
  className?: string;
}

export declare function Uploader(props: UploaderProps): ReactElement;
