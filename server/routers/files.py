"""``/files/<id>``: a file's status page, where a notification leads, and ``/files``, the user's uploads.

Rendered on the server (small, no engine needed) so a click on a notification shows the outcome at once, even in a
browser where the app's worker is not running. The uploading browser is recognised by its identity cookie; an email
link carries a signed token for that one file (see :mod:`server.notify.links`).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from server import content_policy, timeline
from server.dependencies import DbSession, SettingsDep, StorageDep
from server.identity import CurrentUser, Principal, identify
from server.models import ScanStatus, SessionEvent, UploadSession, UploadStatus
from server.notify.policy import human_size
from server.notify.service import NotificationsDep
from server.proxy import url_prefix
from server.routers.support import supports
from server.storage import Storage, StorageError
from server.uploads import reconcile
from wire.view import FILES_PATH, SCAN_TEXT, scan_text, status_page_path

router = APIRouter(tags=["files"])

_STATUS = {
    UploadStatus.COMPLETED.value: "Uploaded in full",
    UploadStatus.UPLOADING.value: "Uploading — it continues while a tab of the app is open",
    UploadStatus.ABORTED.value: "Cancelled",
    UploadStatus.FAILED.value: "Failed — its content was refused; upload the file again",
    UploadStatus.EXPIRED.value: "Expired — upload the file again",
}


def status_words(row: UploadSession) -> str:
    """The status a person reads: the upload's, then, once completed, its scan's (worded as the card words it)."""
    if row.status == UploadStatus.COMPLETED.value and row.scan_status in SCAN_TEXT:
        return scan_text(row.scan_status, row.scan_signature)
    return _STATUS.get(row.status, row.status)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def html_page(
    request: Request, title: str, body: str, code: int = status.HTTP_200_OK, refresh_seconds: int | None = None
) -> HTMLResponse:
    """A server-rendered page; its links are under the prefix the app is served at (``body`` builds its own links
    with :func:`server.proxy.url_prefix` too)."""
    prefix = html.escape(url_prefix(request.scope))
    refresh = f'<meta http-equiv="refresh" content="{refresh_seconds}">' if refresh_seconds else ""
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} — Smartcat</title><link rel="stylesheet" href="{prefix}/static/style.css"></head>
<body><main class="file-page">{body}<p><a href="{prefix}/">Back to uploads</a></p></main></body></html>"""
    return HTMLResponse(document, status_code=code, headers={"Cache-Control": "no-store"})


def _principal(request: Request) -> Principal | None:
    """Whoever looks, if known (no new anonymous identity is made for a page view)."""
    try:
        return identify(request)
    except HTTPException:  # no valid host token: only a link token can show a page
        return None


def _viewer(request: Request) -> str | None:
    """The owner key of whoever looks, if known."""
    principal = _principal(request)
    return principal.owner if principal else None


def timeline_section(events: list[SessionEvent]) -> str:
    """The support timeline, for admins of the session's tenant: one row per event, server and browser."""
    rows = "".join(
        f'<tr class="timeline-{html.escape(e.source)}"><td>{html.escape(e.at.strftime("%Y-%m-%d %H:%M:%S"))}</td>'
        f"<td>{html.escape(e.source)}</td><td>{html.escape(e.kind)}</td><td>{html.escape(e.detail)}</td>"
        f"<td>{'' if e.value is None else html.escape(f'{e.value:g}')}</td></tr>"
        for e in events
    )
    return (
        '<section class="timeline"><h2>Support timeline</h2><table><thead><tr><th>UTC</th><th>from</th>'
        f"<th>event</th><th>detail</th><th>value</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


@router.get(FILES_PATH, response_class=HTMLResponse, include_in_schema=False)
def list_files(request: Request, db: DbSession) -> HTMLResponse:
    """The caller's uploads, newest first: where a notification about several files leads."""
    viewer = _viewer(request)
    rows = (
        list(
            db.scalars(
                select(UploadSession)
                .where(UploadSession.owner_id == viewer)
                .order_by(UploadSession.created_at.desc())
                .limit(100)
            )
        )
        if viewer
        else []
    )
    prefix = url_prefix(request.scope)
    items = "".join(
        f'<li data-session-id="{html.escape(r.id)}"><a href="{html.escape(prefix + status_page_path(r.id))}">'
        f"{html.escape(r.file_name)}</a> — {html.escape(human_size(r.size))}, "
        f"{html.escape(status_words(r))}</li>"
        for r in rows
    )
    body = f"<h1>Your uploads</h1><ul class='files'>{items}</ul>" if rows else "<h1>Your uploads</h1><p>None yet.</p>"
    return html_page(request, "Your uploads", body)


@router.get(FILES_PATH + "/{session_id}", response_class=HTMLResponse, include_in_schema=False)
def file_page(
    session_id: str,
    request: Request,
    db: DbSession,
    notifications: NotificationsDep,
    storage: StorageDep,
    settings: SettingsDep,
    token: Annotated[str | None, Query(max_length=128)] = None,
) -> HTMLResponse:
    """One upload's status. Someone else's (without a valid link token) answers 404 like a missing one.

    While uploading it shows the share of the file S3 already holds and refreshes itself; once completed, a
    download link (a short-lived presigned GET)."""
    row = db.get(UploadSession, session_id)
    principal = _principal(request)
    support = row is not None and supports(principal, row.owner_id)
    owner_or_link = row is not None and (
        (principal is not None and row.owner_id == principal.owner) or notifications.links.allows(db, session_id, token)
    )
    allowed = owner_or_link or support
    if row is None or not allowed:
        return html_page(
            request,
            "Not found", "<h1>File not found</h1><p>This link does not lead to an upload of yours.</p>", 404
        )
    facts = [
        ("Size", human_size(row.size)),
        ("Status", status_words(row)),
        ("Type", row.content_type),
        ("Started", _when(row.created_at)),
    ]
    if row.completed_at:
        facts.append(("Finished", _when(row.completed_at)))
    uploading = row.status == UploadStatus.UPLOADING.value
    checking = row.status == UploadStatus.COMPLETED.value and row.scan_status == ScanStatus.PENDING.value
    if uploading:
        facts.append(("Uploaded so far", f"{_percent_on_storage(storage, row)}%"))
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts)
    body = (
        f'<h1 class="file-name">{html.escape(row.file_name)}</h1>'
        f'<dl class="file-facts" data-status="{html.escape(row.status)}" '
        f'data-scan="{html.escape(row.scan_status or "")}">{rows}</dl>'
    )
    # Never a link to an object in quarantine; support sees the status and timeline, not the user's file.
    if row.released and owner_or_link:
        safe_type = content_policy.download_type(row.content_type, frozenset(settings.allowed_content_types))
        url = storage.presign_download(row.object_key, row.file_name, settings.presign_ttl_seconds, safe_type)
        name = html.escape(row.file_name)
        body += f'<p><a class="download" href="{html.escape(url)}" download>Download {name}</a></p>'
    if support:
        body += timeline_section(timeline.of_session(db, row.id))
    return html_page(request, row.file_name, body, refresh_seconds=5 if uploading or checking else None)


def _percent_on_storage(storage: Storage, row: UploadSession) -> int:
    """The share of the file S3 already holds (whole parts only), from ListParts: true even with no tab open."""
    try:
        parts = storage.list_parts(row.object_key, row.upload_id)
    except StorageError:
        return 0
    done = reconcile.whole_bytes(parts, reconcile.plan_of(row))
    return int(100 * done / row.size) if row.size else 0


@router.delete("/api/files/{session_id}/links", status_code=status.HTTP_204_NO_CONTENT, tags=["files"])
def revoke_links(session_id: str, owner: CurrentUser, db: DbSession, notifications: NotificationsDep) -> None:
    """Every link to this file sent so far (in emails) stops working; the owner still sees the page."""
    row = db.get(UploadSession, session_id)
    if row is None or row.owner_id != owner:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "upload session not found")
    notifications.links.revoke_all(db, session_id)
