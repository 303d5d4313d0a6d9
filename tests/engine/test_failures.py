import pytest

from browser_py.engine.failures import FailureKind, check_part_answer, classify_api_response, classify_storage_response


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


# ---- answers that are not the storage's -------------------------------------------------------------------------

PORTAL = "<!DOCTYPE html><html><head><title>Welcome to Airport Wi-Fi</title></head><body>Log in</body></html>"


@pytest.mark.parametrize(
    ("etag", "content_type", "body"),
    [
        pytest.param('"abc"', "text/html; charset=utf-8", PORTAL, id="portal-page-with-an-etag"),
        pytest.param(None, "text/html", PORTAL, id="portal-page"),
        pytest.param('"abc"', "", "  <html><body>proxy</body></html>", id="page-without-a-content-type"),
        pytest.param(None, "", "", id="no-etag"),
        pytest.param('W/"abc"', "", "", id="weak-etag"),
    ],
)
def test_a_200_that_is_not_the_storages_is_not_a_stored_part(etag: str | None, content_type: str, body: str) -> None:
    failure = check_part_answer(etag, content_type, body)
    assert failure is not None and failure.kind is FailureKind.NOT_STORAGE
    assert failure.counts_against_budget, "retried like a lost connection"


def test_the_storages_own_200_is_a_stored_part() -> None:
    assert check_part_answer('"9b2cf535f27731c974343645a3985328"', "", "") is None
    assert check_part_answer('"e-1"', "application/xml", "") is None


def test_a_portal_page_with_a_client_error_status_is_not_the_storage_refusing() -> None:
    failure = classify_storage_response(403, PORTAL, "text/html")
    assert failure.kind is FailureKind.NOT_STORAGE
    refused = classify_storage_response(403, s3_error("AccessDenied", "denied"), "application/xml")
    assert refused.kind is FailureKind.FATAL
