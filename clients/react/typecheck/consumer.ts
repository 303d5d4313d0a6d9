// A TypeScript consumer of the uploader's declarations, compiled with `tsc --noEmit` by the tests: if the client's
// or the hook's types drift from what a host writes against them, this stops compiling.
import { createUploader, type UploadView, type Summary } from "../../../web/client.js";
import type { UseUploader, UploaderProps } from "../index.js";

const uploader = createUploader({ base: "/uploader" });
uploader.addEventListener("change", (event) => {
  const view: UploadView = event.detail;
  const percent: number = view.percent;
  const offered: readonly string[] = view.actions;
  if (view.actions.includes("pause")) uploader.pause(view.local_id);
  console.log(view.file_name, view.label, percent, offered, view.link ?? "no link yet");
});
uploader.addEventListener("completed", (event) => console.log(event.detail.message, event.detail.link));
uploader.addEventListener("leave-hint", (event) => console.log(event.detail.banner));
uploader.addEventListener("summary", (event) => {
  const summary: Summary = event.detail;
  console.log(summary.text);
});
const input = document.querySelector("input[type=file]") as HTMLInputElement;
uploader.add(input.files ?? []);
const first: UploadView | undefined = uploader.uploads()[0];
if (first) uploader.act(first.local_id, "retry");
const status: "starting" | "ready" | "failed" = uploader.engine().status;

declare const hook: UseUploader;
hook.add([new File(["x"], "x.txt")]);
const props: UploaderProps = { base: "/uploader", compact: true, onCompleted: (finished) => console.log(finished.link) };
console.log(status, props);

if (first) {
  // @ts-expect-error: a view's fields are read-only (the engine owns them)
  first.percent = 3;
}
// @ts-expect-error: not an action a card can offer
uploader.act("id", "delete-everything");
