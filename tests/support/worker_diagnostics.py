"""Ask the app's SharedWorker how it booted, over its diagnostics BroadcastChannel (see ``web/worker.mjs``).

Playwright cannot reach a SharedWorker's console or network, so the worker answers ``{"type": "request"}`` on the
``smartcat-worker-diagnostics`` channel with: ``boot`` (``mode`` "snapshot" or "plain", ``fallback`` reason,
``python_ms`` and ``ready_ms`` since the worker started, ``phases``), ``heap_bytes`` (Pyodide's wasm memory, which
never shrinks, so it is also the peak), ``time_origin`` and ``resources`` (Resource Timing of what it fetched:
``name``, ``type``, ``start``, ``end`` in ms since ``time_origin``).
"""

from __future__ import annotations

from typing import Any, Protocol

# Retries until the worker's module has run (a request sent earlier is lost) and, if asked, until Python is ready.
REPORT_JS = """async ([waitReady, clear, timeoutMs, buffer]) => {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const report = await new Promise((resolve) => {
      const channel = new BroadcastChannel("smartcat-worker-diagnostics");
      const id = `${Math.random()}`;
      const timer = setTimeout(() => { channel.close(); resolve(null); }, 200);
      channel.onmessage = (event) => {
        if (event.data && event.data.type === "report" && event.data.id === id) {
          clearTimeout(timer);
          channel.close();
          resolve(event.data);
        }
      };
      channel.postMessage({ type: "request", id, clear, buffer });
    });
    if (report && (!waitReady || report.boot.ready_ms != null || report.boot.error)) return report;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
}"""


class _Evaluates(Protocol):
    def evaluate(self, expression: str, arg: Any = None) -> Any: ...


def worker_report(
    page: _Evaluates, *, wait_ready: bool = True, clear: bool = False, timeout_s: float = 60, buffer: int = 0
) -> Any:
    """The worker's diagnostics report (a dict), or AssertionError when it never answers.

    ``clear`` empties the worker's Resource Timing buffer after the report; ``buffer`` enlarges it (entries).
    """
    report = page.evaluate(REPORT_JS, [wait_ready, clear, timeout_s * 1000, buffer])
    assert report is not None, "the upload worker did not answer on its diagnostics channel"
    return report
