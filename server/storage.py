"""A narrow S3 interface for multipart uploads, over boto3, with S3's errors turned into a few domain ones.

Two clients: one talks to S3 from this server (``S3_ENDPOINT_URL``); the other only signs URLs for browsers
(``S3_PUBLIC_ENDPOINT_URL``), because SigV4 signs the Host header the browser will send.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from server.presign import PartSigner
from server.s3_direct import DirectS3

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    from server.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The id of the lifecycle rule the server writes (aborting incomplete multipart uploads).
LIFECYCLE_RULE_ID = "smartcat-abort-incomplete-multipart-uploads"
#: One connection per request thread (server.db.POOL_SIZE) rather than urllib3's 10, which under load opened and
#: discarded a connection per S3 call ("Connection pool is full").
MAX_POOL_CONNECTIONS = 50
#: ListParts pages hold at most 1,000 parts on AWS; ask for that explicitly (SeaweedFS would give 10,000).
LIST_PARTS_PAGE = 1000


class StorageError(Exception):
    """S3 refused or failed a request in a way the caller cannot fix by changing its input."""


class StorageUnavailable(StorageError):
    """S3 could not be reached (down, restarting, timing out): worth retrying later."""


class UploadNotFound(StorageError):
    """S3 has no such multipart upload: it was completed, aborted, or expired by a lifecycle rule."""


class InvalidParts(StorageError):
    """S3 rejected the part list of a complete: unknown part or ETag, bad order, or a part under 5 MiB."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ObjectNotFound(StorageError):
    """No object at that key."""


@dataclass(frozen=True, slots=True)
class StoredPart:
    """A part S3 holds for an in-progress multipart upload."""

    number: int
    etag: str
    size: int
    last_modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class Assembled:
    """What CompleteMultipartUpload answered."""

    etag: str
    checksum_sha256: str | None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    etag: str
    content_type: str | None
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str
    region: str


def make_client(
    endpoint_url: str, credentials: S3Credentials, *, connect_timeout: float = 5, read_timeout: float = 60
) -> S3Client:
    """A path-style SigV4 client; checksums only when an operation requires them (S3-compatible stores vary)."""
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=MAX_POOL_CONNECTIONS,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        region_name=credentials.region,
        config=config,
    )
    return client


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _translate(error: Exception) -> Exception:
    """Map a botocore failure to the domain exception callers handle."""
    if isinstance(error, ClientError):
        code = _code(error)
        if code == "NoSuchUpload":
            return UploadNotFound(_message(error) or code)
        # BadDigest at completion: a part checksum given does not match the bytes S3 verified for that part.
        if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "BadDigest", "InvalidDigest"}:
            return InvalidParts(code, _message(error))
        if code in {"NoSuchKey", "404", "NotFound"}:
            return ObjectNotFound(_message(error) or code)
        if _status(error) >= 500 or code in {"ServiceUnavailable", "SlowDown", "InternalError"}:
            return StorageUnavailable(f"{code}: {_message(error)}")
        return StorageError(f"{code}: {_message(error)}")
    if isinstance(error, (ConnectionError, HTTPClientError)):
        return StorageUnavailable(str(error))
    return StorageError(str(error))


def content_disposition(file_name: str) -> str:
    """RFC 6266 ``attachment`` with the UTF-8 name, so downloads get the original file name back."""
    return f"attachment; filename*=UTF-8''{quote(file_name, safe='')}"


class Storage:
    """One bucket of one S3 endpoint, seen only through the operations the upload flow needs."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        credentials: S3Credentials,
        public_endpoint_url: str | None = None,
        part_url_base: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.public_endpoint_url = public_endpoint_url or endpoint_url
        #: Part URLs are signed for ``public_endpoint_url`` and handed out under this base (a same-origin route).
        self.part_url_base = part_url_base
        self.client = make_client(endpoint_url, credentials)
        self.presigner = make_client(self.public_endpoint_url, credentials)
        #: The calls every upload makes skip the client's request pipeline (server/s3_direct.py).
        self.direct = DirectS3(
            endpoint_url,
            bucket,
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.region,
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )
        #: Part URLs, the most frequent signature by far, skip the client's request pipeline (server/presign.py).
        self.part_signer = PartSigner(
            self.public_endpoint_url,
            bucket,
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.region,
        )

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self.client, operation)(**params)
        except (ClientError, BotoCoreError) as error:
            raise _translate(error) from error

    def _direct(self, call: Callable[..., T], *args: Any) -> T:
        try:
            return call(*args)
        except (ClientError, BotoCoreError) as error:
            raise _translate(error) from error

    def ensure_bucket(self, cors_origins: Sequence[str], abort_incomplete_after_days: int | None = None) -> bool:
        """Create the bucket if needed and (re)write its CORS rule, so browsers may PUT parts from our pages; with
        ``abort_incomplete_after_days``, also a lifecycle rule aborting multipart uploads older than that.

        Returns whether the lifecycle rule was set: a store without the lifecycle API (NotImplemented) is logged and
        left to the janitor, which expires sessions older than ``SESSION_MAX_AGE_SECONDS`` anyway."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _status(error) != 404 and _code(error) not in {"404", "NoSuchBucket", "NotFound"}:
                raise _translate(error) from error
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as create_error:
                if _code(create_error) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise _translate(create_error) from create_error
        except BotoCoreError as error:
            raise _translate(error) from error
        self._call(
            "put_bucket_cors",
            Bucket=self.bucket,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": list(cors_origins),
                        "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": ["ETag", "x-amz-checksum-sha256"],
                        "MaxAgeSeconds": 3000,
                    }
                ]
            },
        )
        if abort_incomplete_after_days is None:
            return False
        return self._abort_incomplete_uploads_after(abort_incomplete_after_days)

    def _abort_incomplete_uploads_after(self, days: int) -> bool:
        """Replace the bucket's lifecycle rules with one: abort incomplete multipart uploads after ``days``.

        The bucket is the uploader's own, so its lifecycle configuration is ours to write whole (S3 has no call to
        add one rule)."""
        try:
            self._call(
                "put_bucket_lifecycle_configuration",
                Bucket=self.bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": LIFECYCLE_RULE_ID,
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
                        }
                    ]
                },
            )
        except StorageUnavailable:
            raise
        except StorageError as error:
            log.warning("the store refused a lifecycle rule (%s); the janitor alone expires old uploads", error)
            return False
        return True

    def abort_incomplete_after_days(self) -> int | None:
        """The days after which the bucket's lifecycle aborts incomplete multipart uploads, if such a rule is set."""
        try:
            response = self._call("get_bucket_lifecycle_configuration", Bucket=self.bucket)
        except StorageUnavailable:
            raise
        except StorageError:
            return None
        for rule in response.get("Rules", []):
            abort = rule.get("AbortIncompleteMultipartUpload")
            if rule.get("Status") == "Enabled" and abort:
                return int(abort["DaysAfterInitiation"])
        return None

    def create_multipart(
        self, key: str, content_type: str, file_name: str | None = None, checksum_algorithm: str | None = None
    ) -> str:
        """Start a multipart upload and return its UploadId. The file name travels as metadata, never as key."""
        headers = {"Content-Type": content_type}
        if checksum_algorithm is not None:
            headers["x-amz-checksum-algorithm"] = checksum_algorithm
        if file_name is not None:
            # S3 metadata must be ASCII: keep the name percent-encoded.
            headers["x-amz-meta-file-name"] = quote(file_name, safe="")
            headers["Content-Disposition"] = content_disposition(file_name)
        return self._direct(self.direct.create_multipart_upload, key, headers)

    def presign_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        ttl: int,
        checksum_sha256: str | None = None,
        *,
        content_length: int,
    ) -> str:
        """A URL the browser PUTs one part's bytes to; signing is local, no request to S3.

        ``content_length`` (the part's length in the plan) is signed in: the ``Content-Length`` header is one of the
        URL's signed headers, so a PUT of any other length fails the signature check (403) before S3 stores a byte.
        Browsers set the header from the body; nobody can send more than the plan says.
        With ``checksum_sha256`` the ``x-amz-checksum-sha256`` header is signed into the URL: the PUT must carry
        exactly that value, and S3 refuses bytes that do not hash to it (400 BadDigest).
        """
        try:
            url = self.part_signer.upload_part(key, upload_id, part_number, ttl, content_length, checksum_sha256)
        except BotoCoreError as error:
            raise _translate(error) from error
        return self._routed(url)

    def _routed(self, url: str) -> str:
        """``url`` under ``part_url_base``: the path and query the signature covers stay exactly as signed."""
        if self.part_url_base is None:
            return url
        signed_for = self.public_endpoint_url.rstrip("/")
        assert url.startswith(signed_for + "/"), "boto3 signs URLs under the endpoint it was given"
        return self.part_url_base + url[len(signed_for) :]

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """Every part S3 holds, in part-number order, following ``PartNumberMarker`` past 1,000 per page.

        A part sent twice may be listed twice (SeaweedFS keeps every copy; AWS keeps the last): callers choose.
        """
        parts: list[StoredPart] = []
        marker = 0
        while True:
            response = self._direct(self.direct.list_parts, key, upload_id, LIST_PARTS_PAGE, marker)
            parts.extend(
                StoredPart(
                    number=int(item["PartNumber"]),
                    etag=str(item["ETag"]),
                    size=int(item["Size"]),
                    last_modified=item.get("LastModified"),
                )
                for item in response.get("Parts", [])
            )
            if not response.get("IsTruncated"):
                break
            next_marker = int(response.get("NextPartNumberMarker") or 0)
            if next_marker <= marker:
                raise StorageError("ListParts reported more parts but did not advance its marker")
            marker = next_marker
        parts.sort(key=lambda part: part.number)
        return parts

    def complete(
        self,
        key: str,
        upload_id: str,
        parts: Iterable[tuple[int, str]],
        checksums: Mapping[int, str] | None = None,
    ) -> Assembled:
        """Assemble the object from ``(part_number, etag)`` pairs (with each part's SHA-256 when the upload is
        checksummed) and return its ETag and S3's composite checksum."""
        completed: list[CompletedPartTypeDef] = []
        for number, etag in sorted(parts):
            part: CompletedPartTypeDef = {"PartNumber": number, "ETag": etag}
            if checksums is not None:
                part["ChecksumSHA256"] = checksums[number]
            completed.append(part)
        response = self._direct(self.direct.complete_multipart_upload, key, upload_id, completed)
        checksum = response.get("ChecksumSHA256")
        return Assembled(etag=str(response.get("ETag", "")), checksum_sha256=str(checksum) if checksum else None)

    def abort(self, key: str, upload_id: str) -> None:
        """Drop the upload and its parts; an upload S3 no longer knows is already gone, which is fine."""
        with contextlib.suppress(UploadNotFound):
            self._call("abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id)

    def read_head(self, key: str, length: int) -> bytes:
        """The object's first ``length`` bytes (fewer if it is shorter)."""
        return self._direct(self.direct.get_range, key, 0, length - 1)[:length]

    def check(self) -> None:
        """Raise :class:`StorageError` unless the bucket answers (readiness)."""
        self._call("head_bucket", Bucket=self.bucket)

    def open_object(self, key: str) -> Any:
        """The object's bytes as a stream (``read(n)``, ``close()``): large objects never sit in memory."""
        return self._call("get_object", Bucket=self.bucket, Key=key)["Body"]

    def presign_download(self, key: str, file_name: str, ttl: int, content_type: str) -> str:
        """A short-lived GET URL for the finished object: always an attachment (saved under the user's file name,
        never shown inline by the browser) with the type given, whatever the object's stored one."""
        try:
            url = self.presigner.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": content_disposition(file_name),
                    "ResponseContentType": content_type,
                },
                ExpiresIn=ttl,
            )
        except (ClientError, BotoCoreError) as error:
            raise _translate(error) from error
        return str(url)

    def delete_object(self, key: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=key)

    def head_object(self, key: str) -> ObjectInfo:
        response = self._call("head_object", Bucket=self.bucket, Key=key)
        return ObjectInfo(
            size=int(response["ContentLength"]),
            etag=str(response.get("ETag", "")),
            content_type=response.get("ContentType"),
            metadata=dict(response.get("Metadata", {})),
        )


def storage_for(settings: Settings) -> Storage:
    """The bucket the settings name, as a server process and a scanner process (``python -m server.scan``) use it."""
    return Storage(
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.presign_endpoint_url,
        part_url_base=settings.part_url_base,
        bucket=settings.s3_bucket,
        credentials=S3Credentials(
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            region=settings.s3_region,
        ),
    )
