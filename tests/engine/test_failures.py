import pytest

from browser_py.engine.failures import FailureKind, classify_api_response, classify_storage_response


def s3_error(code: str, message: str = "") -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (500, s3_error("InternalError"), FailureKind.TRANSIENT),
        (503, s3_error("SlowDown"), FailureKind.TRANSIENT),
        (429, "", FailureKind.TRANSIENT),
        (502, "<html>bad gateway</html>", FailureKind.TRANSIENT),
        (403, s3_error("AccessDenied", "Request has expired"), FailureKind.URL_EXPIRED),
        (
            403,
            s3_error("SignatureDoesNotMatch", "The request signature we calculated does not match"),
            FailureKind.FATAL,
        ),
        (400, s3_error("BadDigest", "The SHA256 you specified did not match"), FailureKind.BAD_DIGEST),
        (
            404,
            s3_error("NoSuchUpload", "The specified multipart upload does not exist."),
            FailureKind.SESSION_GONE,
        ),
        (400, s3_error("EntityTooLarge"), FailureKind.FATAL),
    ],
)
def test_storage_failures(status: int, body: str, kind: FailureKind) -> None:
    failure = classify_storage_response(status, body)
    assert failure.kind is kind
    assert failure.status == status
    assert failure.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, FailureKind.TRANSIENT),
        (503, FailureKind.TRANSIENT),
        (429, FailureKind.TRANSIENT),
        (404, FailureKind.SESSION_GONE),
        (410, FailureKind.SESSION_GONE),
        (409, FailureKind.FATAL),
        (422, FailureKind.FATAL),
    ],
)
def test_api_failures(status: int, kind: FailureKind) -> None:
    failure = classify_api_response(status, "some detail")
    assert failure.kind is kind
    assert "some detail" in failure.message


def test_only_transient_and_digest_failures_use_the_retry_budget() -> None:
    assert classify_storage_response(500, "").counts_against_budget
    assert classify_storage_response(400, s3_error("BadDigest")).counts_against_budget
    assert not classify_storage_response(
        403, s3_error("AccessDenied", "Request has expired")
    ).counts_against_budget
