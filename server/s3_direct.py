"""The four S3 calls every upload makes (CreateMultipartUpload, ListParts, CompleteMultipartUpload, and a ranged
GetObject for the content check), signed and sent without the boto3 client's request pipeline.

Through the client each call cost ~4.5 ms of CPU here, spread over its pipeline (parameter validation, the
endpoint rule engine, event hooks, the user agent, context copies, the response parser); five per upload were a
sixth of the server's CPU under ``make load``. These are simple path-style REST calls: the request is built here,
signed by botocore's own ``S3SigV4Auth``, sent by botocore's own HTTP session (urllib3, pooled), and the small XML
answer read with ElementTree. Failures become the same ``ClientError`` the client raises (code, message, status),
so :mod:`server.storage` maps them in its one place; transient ones (no connection, 5xx, throttling, S3's "200
with an error inside" of a complete) are retried like the client's ``standard`` mode, three attempts in all.
``tests/server/test_s3_direct.py`` holds each call to the client's answers against SeaweedFS.
"""

from __future__ import annotations

import random
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from botocore.httpsession import URLLib3Session
from botocore.utils import get_environ_proxies

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
#: Attempts per call, as the client's ``standard`` retry mode with ``max_attempts=3``.
ATTEMPTS = 3
#: Codes worth another attempt, beside any 5xx and a lost connection (botocore's transient and throttling sets,
#: those S3 answers).
_RETRY_CODES = frozenset({"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"})
_THROTTLING = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"})


def _text(element: ElementTree.Element | None, name: str) -> str | None:
    """The text of ``element``'s child ``name`` (S3's namespace or none), or None."""
    if element is None:
        return None
    child = element.find(_NS + name)
    if child is None:
        child = element.find(name)
    return child.text if child is not None else None


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return element.findall(_NS + name) or element.findall(name)


def _error(status: int, body: bytes, operation: str) -> ClientError:
    """The ``ClientError`` the boto3 client raises for this answer."""
    code, message = str(status), ""
    if body:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            root = None
        if root is not None and root.tag.rsplit("}", 1)[-1] == "Error":
            code = _text(root, "Code") or code
            message = _text(root, "Message") or ""
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


def _transient(error: Exception) -> bool:
    if isinstance(error, (ConnectionError, HTTPClientError)):
        return True
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return status >= 500 or error.response.get("Error", {}).get("Code") in _RETRY_CODES
    return False


class DirectS3:
    """The upload calls on one bucket of one endpoint, with the client's credentials, region and timeouts."""

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        region: str,
        *,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_pool_connections: int = 50,
    ) -> None:
        self._bucket_url = f"{endpoint_url.rstrip('/')}/{quote(bucket, safe='')}/"
        self._credentials = Credentials(access_key_id, secret_access_key)
        self._region = region
        self._http = URLLib3Session(
            proxies=get_environ_proxies(endpoint_url),
            timeout=(connect_timeout, read_timeout),  # type: ignore[arg-type]  # (connect, read) as the client passes
            max_pool_connections=max_pool_connections,
        )

    def create_multipart_upload(self, key: str, headers: Mapping[str, str]) -> str:
        root = self._xml(self._send("CreateMultipartUpload", "POST", key, {"uploads": ""}, headers))
        upload_id = _text(root, "UploadId")
        if not upload_id:
            raise _error(500, b"", "CreateMultipartUpload")
        return upload_id

    def list_parts(self, key: str, upload_id: str, max_parts: int, marker: int) -> dict[str, Any]:
        """One page, in the shape the client gives (``Parts`` with ``PartNumber``, ``ETag``, ``Size``,
        ``LastModified``; ``IsTruncated``; ``NextPartNumberMarker``)."""
        query = {"max-parts": str(max_parts), "part-number-marker": str(marker), "uploadId": upload_id}
        root = self._xml(self._send("ListParts", "GET", key, query))
        parts = []
        for part in _children(root, "Part"):
            modified = _text(part, "LastModified")
            parts.append(
                {
                    "PartNumber": int(_text(part, "PartNumber") or 0),
                    "ETag": _text(part, "ETag") or "",
                    "Size": int(_text(part, "Size") or 0),
                    "LastModified": datetime.fromisoformat(modified) if modified else None,
                }
            )
        next_marker = _text(root, "NextPartNumberMarker")
        return {
            "Parts": parts,
            "IsTruncated": (_text(root, "IsTruncated") or "").strip().lower() == "true",
            "NextPartNumberMarker": int(next_marker) if next_marker else None,
        }

    def complete_multipart_upload(self, key: str, upload_id: str, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``parts``: ``PartNumber``, ``ETag`` and, for a checksummed upload, ``ChecksumSHA256``."""
        body = ElementTree.Element("CompleteMultipartUpload", xmlns=_NS[1:-1])
        for part in parts:
            element = ElementTree.SubElement(body, "Part")
            for name in ("PartNumber", "ETag", "ChecksumSHA256"):
                if name in part:
                    ElementTree.SubElement(element, name).text = str(part[name])
        data = ElementTree.tostring(body, encoding="utf-8", xml_declaration=False)
        root = self._xml(self._send("CompleteMultipartUpload", "POST", key, {"uploadId": upload_id}, body=data))
        answer: dict[str, Any] = {"ETag": _text(root, "ETag") or ""}
        checksum = _text(root, "ChecksumSHA256")
        if checksum:
            answer["ChecksumSHA256"] = checksum
        return answer

    def get_range(self, key: str, first: int, last: int) -> bytes:
        """Bytes ``first``..``last`` of the object (fewer if it is shorter)."""
        return self._send("GetObject", "GET", key, {}, {"Range": f"bytes={first}-{last}"}).content

    # ---- one call ------------------------------------------------------------------------------------------------

    @staticmethod
    def _xml(response: AWSResponse) -> ElementTree.Element:
        return ElementTree.fromstring(response.content)

    def _send(
        self,
        operation: str,
        method: str,
        key: str,
        query: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> AWSResponse:
        """The answer of a 2xx; the client's ``ClientError`` (or connection error) after the attempts."""
        url = self._bucket_url + quote(key, safe="/~")  # as botocore's S3 serializer quotes keys
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(operation, method, url, query, headers or {}, body)
            except (ClientError, ConnectionError, HTTPClientError) as error:
                if attempt >= ATTEMPTS or not _transient(error):
                    raise
                throttled = isinstance(error, ClientError) and error.response["Error"]["Code"] in _THROTTLING
                time.sleep(random.random() * min(20.0, (1.0 if throttled else 0.05) * 2**attempt))

    def _attempt(
        self, operation: str, method: str, url: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> AWSResponse:
        request = AWSRequest(method=method, url=url, params=dict(query), headers=dict(headers), data=body)
        S3SigV4Auth(self._credentials, "s3", self._region).add_auth(request)
        response = self._http.send(request.prepare())
        content = response.content
        if not 200 <= response.status_code < 300:
            raise _error(response.status_code, content, operation)
        if operation == "CompleteMultipartUpload" and b"<Error" in content[:512]:
            raise _error(500, content, operation)  # S3's "200 OK" whose body is an error: the client retries it
        return response
