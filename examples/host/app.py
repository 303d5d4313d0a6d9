"""An example host application: its own pages and its own login, which issues a JWT in a cookie, with the uploader
mounted at ``/uploader`` (``server.embed.mount_uploader``) verifying that JWT.

- ``/login``: a user name and password (the demo users are in :data:`DEMO_USERS`); signing in sets the host's
  session cookie, a JWT (HS256) that the uploader reads in ``IDENTITY_MODE=jwt`` (same secret, issuer, audience).
- ``/``: a page embedding ``<smartcat-uploader>``; ``/projects``: another host page; ``/react/``: the React example
  (``clients/react/example``, built by ``npm run build`` there), served as static files.

Run it: ``python -m examples.host`` (starts the embedded SeaweedFS like ``python -m server``), then open
http://127.0.0.1:8000 and sign in as alice / wonderland.
"""

from __future__ import annotations

import hmac
import html
import os
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from server.embed import mount_uploader
from server.settings import Settings

HERE = Path(__file__).resolve().parent
REACT_DIST = HERE.parent.parent / "clients" / "react" / "example" / "dist"
ISSUER = "https://host.example"
AUDIENCE = "smartcat-uploads"
TENANT = "example"
SESSION_SECONDS = 8 * 3600
#: The demo's users and passwords. A real host has its own user store; the uploader never sees passwords.
DEMO_USERS = {"alice": "wonderland", "bob": "the-builder"}
#: The host's own pages are under a strict policy too: the element and the worker need nothing inline.
HOST_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def uploader_settings(secret: str, **values: object) -> dict[str, object]:
    """The uploader's identity settings for this host: the JWT its login issues (``Settings(**...)``)."""
    return {
        "identity_mode": "jwt",
        "jwt_secret": secret,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "jwt_tenant_claim": "tenant_id",
        **values,
    }


def _page(title: str, body: str, user: str | None, head: str = "") -> HTMLResponse:
    nav = (
        '<nav aria-label="Host"><a href="/">Upload</a><a href="/projects">Projects</a>'
        '<a href="/react/">React upload</a></nav>'
    )
    who = (
        f'<span class="who">Signed in as <strong>{html.escape(user)}</strong> · <a href="/logout">Sign out</a></span>'
        if user
        else ""
    )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} — Example host</title><link rel="stylesheet" href="/assets/host.css">{head}</head>
<body><header><strong>Example host</strong>{nav if user else ""}{who}</header><main>{body}</main></body></html>"""
    return HTMLResponse(document, headers={"Content-Security-Policy": HOST_CSP, "Cache-Control": "no-store"})


def create_host(settings: Settings, *, users: dict[str, str] | None = None) -> FastAPI:
    """The host application. ``settings``: the uploader's (JWT mode with a secret: the host signs with it)."""
    if settings.identity_mode != "jwt" or not settings.jwt_secret:
        raise ValueError("the example host signs its users in with a JWT: IDENTITY_MODE=jwt and JWT_SECRET")
    secret, cookie = settings.jwt_secret, settings.jwt_cookie_name
    known = DEMO_USERS if users is None else users
    app = FastAPI(title="Example host", docs_url=None, redoc_url=None, openapi_url=None)

    def signed_in(request: Request) -> str | None:
        """The host's own session check (the uploader checks the same token on its side)."""
        try:
            claims = jwt.decode(
                request.cookies.get(cookie, ""), secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.InvalidTokenError:
            return None
        user = claims.get("sub")
        return user if isinstance(user, str) else None

    @app.get("/login", response_class=HTMLResponse)
    def login_form(error: str = "") -> HTMLResponse:
        message = '<p class="error" role="alert">Wrong user name or password.</p>' if error else ""
        form = f"""<h1>Sign in</h1>{message}<form class="login" method="post" action="/login">
<label>User name <input name="user" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>"""
        return _page("Sign in", form, None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        user, password = form.get("user", [""])[0], form.get("password", [""])[0]
        expected = known.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return RedirectResponse("/login?error=1", status_code=303)
        now = int(time.time())
        claims = {"sub": user, "tenant_id": TENANT, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                  "exp": now + SESSION_SECONDS}
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(cookie, jwt.encode(claims, secret, algorithm="HS256"), max_age=SESSION_SECONDS,
                            httponly=True, samesite="lax", secure=settings.secure_cookies, path="/")
        return response

    @app.get("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(cookie, path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    def upload_page(request: Request) -> Response:
        user = signed_in(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        body = """<h1>Send files to translate</h1>
<p>Files upload in the background: keep working in Projects, or close the tab.</p>
<smartcat-uploader accept=".pdf,.docx,.xlsx,.txt,.bin"></smartcat-uploader>"""
        return _page("Upload", body, user, '<script type="module" src="/uploader/static/element.mjs"></script>')

    @app.get("/projects", response_class=HTMLResponse)
    def projects(request: Request) -> Response:
        user = signed_in(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        body = """<h1>Projects</h1><p>The host's own page. Uploads started elsewhere keep going.</p>
<ul><li>Website localisation</li><li>Product manual v4</li></ul>"""
        return _page("Projects", body, user)

    @app.get("/react/", response_class=HTMLResponse)
    def react_page(request: Request) -> Response:
        if signed_in(request) is None:
            return RedirectResponse("/login", status_code=303)
        index = REACT_DIST / "index.html"
        if not index.is_file():
            hint = f"the React example is not built: run `npm ci && npm run build` in {index.parent.parent}"
            return HTMLResponse(hint, status_code=404)
        return HTMLResponse(index.read_text(encoding="utf-8"), headers={"Content-Security-Policy": HOST_CSP})

    app.mount("/react/assets", StaticFiles(directory=REACT_DIST / "assets", check_dir=False), name="react-assets")
    app.mount("/assets", StaticFiles(directory=HERE / "static"), name="host-assets")
    mount_uploader(app, "/uploader", settings)
    return app


def main() -> int:
    """Serve the example host (mount_uploader starts the embedded SeaweedFS, as ``python -m server`` does)."""
    secret = os.environ.get("JWT_SECRET") or secrets.token_urlsafe(32)
    settings = Settings(**uploader_settings(secret))  # type: ignore[arg-type]
    print(f"Example host at http://{settings.host}:{settings.port} (alice / wonderland, bob / the-builder)",
          file=sys.stderr)
    # proxy_headers=False: the uploader's FORWARDED_ALLOW_IPS decides whom to believe (server/proxy.py).
    uvicorn.run(create_host(settings), host=settings.host, port=settings.port, log_level="info", proxy_headers=False)
    return 0
