"""One Locust user = one browser uploading files one after another, as the engine does, with checksums.

Each round is one upload session: create (``POST /api/uploads`` with SHA-256 checksums, so no URLs come with it),
URL request for the part (``POST …/urls`` with its checksum), the part's PUT straight to the store with the signed
``x-amz-checksum-sha256``, status (``GET …/{id}``: ListParts, what a resuming client asks), complete. Between steps the
user waits ``LOAD_THINK_SECONDS`` (default 1 s: the time a real part spends on the wire), so N users keep about N
sessions open at once. The file is ``LOAD_FILE_BYTES`` of random text (default 64 KiB: one part, small, real; text, so
the server's content check at completion reads its head and accepts it).

A response other than the one the API promises is a failure, named by the step it happened in.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from typing import Any

import gevent
from locust import FastHttpUser, task
from locust.exception import RescheduleTask

THINK_SECONDS = float(os.environ.get("LOAD_THINK_SECONDS", "1.0"))
FILE_BYTES = int(os.environ.get("LOAD_FILE_BYTES", str(64 * 1024)))
CONTENT = base64.b64encode(os.urandom(FILE_BYTES))[:FILE_BYTES].decode("ascii")  # sent as its ASCII bytes
CHECKSUM = base64.b64encode(hashlib.sha256(CONTENT.encode("ascii")).digest()).decode()

#: Request names in the results (one row per endpoint).
CREATE, URLS, PUT, STATUS, COMPLETE = "create", "urls", "PUT part (store)", "status", "complete"


class Uploader(FastHttpUser):
    """A browser with its own anonymous identity (the cookie the first answer sets)."""

    #: Sessions start back to back: the pacing is the think time inside a session.
    def wait_time(self) -> float:
        return THINK_SECONDS

    def _json(
        self,
        method: str,
        path: str,
        name: str,
        expect: int,
        body: dict[str, Any] | None = None,
        check: Callable[[Any], bool] = lambda _answer: True,
    ) -> Any:
        """The answer's JSON; anything but status ``expect`` and an answer ``check`` accepts fails the step."""
        with self.client.request(method, path, json=body, name=name, catch_response=True) as response:
            answer = response.json() if response.status_code == expect else None
            if answer is None or not check(answer):
                why = response.error or (response.text or "")[:200]  # status 0: no answer (the error says why)
                response.failure(f"{name}: HTTP {response.status_code} {why}")
                raise RescheduleTask
            return answer

    @task
    def upload_one_file(self) -> None:
        created = self._json(
            "POST",
            "/api/uploads",
            CREATE,
            201,
            {"file_name": "load.txt", "size": FILE_BYTES, "content_type": "text/plain", "checksum_algorithm": "SHA256"},
        )
        session = created["session_id"]
        gevent.sleep(THINK_SECONDS)
        signed = self._json(
            "POST",
            f"/api/uploads/{session}/urls",
            URLS,
            200,
            {"parts": [{"part_number": 1, "checksum_sha256": CHECKSUM}]},
        )
        url = signed["urls"][0]["url"]
        headers = {"x-amz-checksum-sha256": CHECKSUM}
        with self.client.request("PUT", url, data=CONTENT, headers=headers, name=PUT, catch_response=True) as put:
            etag = put.headers.get("etag") if put.status_code == 200 else None
            if not etag:
                put.failure(f"{PUT}: HTTP {put.status_code} {put.error or (put.text or '')[:200]}")
                raise RescheduleTask
        gevent.sleep(THINK_SECONDS)
        self._json("GET", f"/api/uploads/{session}", STATUS, 200, check=lambda state: len(state["parts"]) == 1)
        gevent.sleep(THINK_SECONDS)
        self._json(
            "POST",
            f"/api/uploads/{session}/complete",
            COMPLETE,
            200,
            {"parts": [{"part_number": 1, "etag": etag}]},
            check=lambda done: done["status"] == "completed",
        )
