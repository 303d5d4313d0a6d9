"""Two models of the people using the uploader; ``python -m load`` runs each by naming its Locust user class.

``SessionUploader`` (model ``session``, the target rows): one user is one browser running our engine, uploading files
one after another at its user's upload rate, as ``load/model.py`` times it. Per file: one create (``POST
/api/uploads`` with SHA-256 checksums, so no URLs come with it), one URL request per 16 parts (``POST …/urls``), one
PUT per part straight to the store (through nginx's store route when ``PART_URL_BASE`` is set), paced like 8 MiB
parts on a ``LOAD_USER_MBPS`` link (default 20 Mbit/s: one part stored every 3.36 s; the engine's four lanes share
the link, so each part is 13.4 s on its lane), a status (``GET …/{id}``: ListParts) in ``LOAD_RESUME_RATE`` of the
files (0.1: a tab closed and reopened mid-file), one complete. With ``LOAD_PARTS`` = 48 a file lasts 161 s and asks
the server 1 + 3 + 0.1 + 1 = 5.1 requests: 0.032 server requests per user per second (500 users: ~16 requests/s to
the server, ~149 part PUTs/s to the store). ``--user-mbps 80`` (20 Mbit/s per lane) gives one PUT per 0.84 s and
0.13 requests per user per second.

The parts are small and real, and S3 decides their shape: every part but the last must be at least 5 MiB
(``wire.plan.MIN_PART_SIZE``; the server plans no smaller, and each URL signs its part's length), so a 48-part file
means 48 x 8 MiB on the wire (500 users x 20 Mbit/s = 10 Gbit/s: not something 2 cores can push past the server, nor
what is measured here). A session file is therefore one real part of ``LOAD_FILE_BYTES`` (64 KiB) that is PUT once
per paced part, to the URL of the latest URL request (a re-sent part replaces the previous one in S3, as after an
engine's retry), and each URL request signs that one part. The server sees a 48-part file's requests at its rate;
what it does per request differs only in signing 1 URL instead of 16 (~0.35 ms CPU each) and listing 1 part instead
of up to 48. A user's first file starts at a random part (``SessionModel.draw``), so users are spread over their
files from the start.

``ChurnUploader`` (model ``churn``, the stress rows): every user a storm of one-part files, create, URL request, PUT,
status, complete with ``LOAD_THINK_SECONDS`` (1 s) between steps: about one server request per user per second,
~30 times a session user's.

Every answer is checked: a response other than the one the API promises is a failure named by its step (the part's
ETag, the status listing that part with that ETag, the completed object's size and multipart ETag).
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust import FastHttpUser, constant, task
from locust.exception import RescheduleTask

from load.model import SessionModel

THINK_SECONDS = float(os.environ.get("LOAD_THINK_SECONDS", "1.0"))
FILE_BYTES = int(os.environ.get("LOAD_FILE_BYTES", str(64 * 1024)))
CONTENT = base64.b64encode(os.urandom(FILE_BYTES))[:FILE_BYTES].decode("ascii")  # sent as its ASCII bytes
CHECKSUM = base64.b64encode(hashlib.sha256(CONTENT.encode("ascii")).digest()).decode()
#: S3's ETag of a one-part multipart object: the MD5 of the part's MD5, then "-1".
_PART_MD5 = hashlib.md5(CONTENT.encode("ascii"), usedforsecurity=False).digest()
OBJECT_ETAG = hashlib.md5(_PART_MD5, usedforsecurity=False).hexdigest() + "-1"
MODEL = SessionModel.from_environment(os.environ)

#: Request names in the results (one row per endpoint).
CREATE, URLS, PUT, STATUS, COMPLETE = "create", "urls", "PUT part (store)", "status", "complete"


class _Uploader(FastHttpUser):
    """A browser with its own anonymous identity (the cookie the first answer sets); each step checks its answer."""

    abstract = True

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

    def create(self) -> str:
        created = self._json(
            "POST",
            "/api/uploads",
            CREATE,
            201,
            {"file_name": "load.txt", "size": FILE_BYTES, "content_type": "text/plain", "checksum_algorithm": "SHA256"},
            check=lambda answer: answer["part_count"] == 1 and answer["urls"] == [],
        )
        return str(created["session_id"])

    def sign(self, session: str) -> str:
        signed = self._json(
            "POST",
            f"/api/uploads/{session}/urls",
            URLS,
            200,
            {"parts": [{"part_number": 1, "checksum_sha256": CHECKSUM}]},
            check=lambda answer: [url["part_number"] for url in answer["urls"]] == [1],
        )
        return str(signed["urls"][0]["url"])

    def put(self, url: str) -> str:
        """The part's ETag (the store's answer for these bytes)."""
        headers = {"x-amz-checksum-sha256": CHECKSUM}
        with self.client.request("PUT", url, data=CONTENT, headers=headers, name=PUT, catch_response=True) as put:
            etag = put.headers.get("etag") if put.status_code == 200 else None
            if not etag:
                put.failure(f"{PUT}: HTTP {put.status_code} {put.error or (put.text or '')[:200]}")
                raise RescheduleTask
            return str(etag)

    def status(self, session: str, etag: str) -> None:
        held = [{"part_number": 1, "etag": etag, "size": FILE_BYTES}]
        self._json("GET", f"/api/uploads/{session}", STATUS, 200, check=lambda state: state["parts"] == held)

    def complete(self, session: str, etag: str) -> None:
        self._json(
            "POST",
            f"/api/uploads/{session}/complete",
            COMPLETE,
            200,
            {"parts": [{"part_number": 1, "etag": etag}]},
            check=lambda done: (
                done["status"] == "completed" and done["size"] == FILE_BYTES and done["etag"].strip('"') == OBJECT_ETAG
            ),
        )


class SessionUploader(_Uploader):
    """Model ``session``: files of ``MODEL.parts`` paced parts, one after another (see the module docstring)."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.first_file = True

    @task
    def upload_one_file(self) -> None:
        steps = MODEL.draw(self.rng, first_file=self.first_file)
        self.first_file = False
        started = time.monotonic()
        session = url = etag = ""
        for step in steps:
            gevent.sleep(max(0.0, started + step.at - time.monotonic()))
            if step.kind == "create":
                session = self.create()
            elif step.kind == "urls":
                url = self.sign(session)
            elif step.kind == "put":
                etag = self.put(url)
            elif step.kind == "status":
                self.status(session, etag)
            else:
                self.complete(session, etag)


class ChurnUploader(_Uploader):
    """Model ``churn``: one-part files back to back, ``THINK_SECONDS`` between steps (the stress model)."""

    def wait_time(self) -> float:
        return THINK_SECONDS

    @task
    def upload_one_file(self) -> None:
        session = self.create()
        gevent.sleep(THINK_SECONDS)
        etag = self.put(self.sign(session))
        gevent.sleep(THINK_SECONDS)
        self.status(session, etag)
        gevent.sleep(THINK_SECONDS)
        self.complete(session, etag)
