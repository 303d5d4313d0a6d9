"""Part URLs signed by botocore's SigV4 query signer directly, not through the client's ``generate_presigned_url``.

The client runs its whole request pipeline for every URL (parameter validation, serialisation, endpoint rules,
event hooks, the user agent): 0.6 ms of CPU per URL on this machine, and the engine asks for 16 at a time. An
UploadPart URL is simple to build (path-style: ``endpoint/bucket/key?partNumber=N&uploadId=U``), and the same signer
class then signs it, so the URL is the one the client would give (``tests/server/test_presign.py`` compares them) for
about 0.25 ms.
"""

from __future__ import annotations

from urllib.parse import quote

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class PartSigner:
    """Signs UploadPart URLs of one bucket for one endpoint (the host the browser will PUT to)."""

    def __init__(self, endpoint_url: str, bucket: str, access_key_id: str, secret_access_key: str, region: str) -> None:
        self._bucket_url = f"{endpoint_url.rstrip('/')}/{quote(bucket, safe='')}/"
        self._credentials = Credentials(access_key_id, secret_access_key)
        self._region = region

    def upload_part(
        self, key: str, upload_id: str, part_number: int, ttl: int, content_length: int, checksum_sha256: str | None
    ) -> str:
        """The presigned PUT of one part; ``Content-Length`` (and the checksum, when given) are signed headers."""
        headers = {"Content-Length": str(content_length)}
        if checksum_sha256 is not None:
            headers["x-amz-checksum-sha256"] = checksum_sha256
        request = AWSRequest(
            method="PUT",
            url=self._bucket_url + quote(key, safe="/~"),  # as botocore's S3 serializer quotes keys
            params={"partNumber": str(part_number), "uploadId": upload_id},
            headers=headers,
        )
        S3SigV4QueryAuth(self._credentials, "s3", self._region, expires=ttl).add_auth(request)
        return str(request.prepare().url)
