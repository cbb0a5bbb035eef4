"""The web UI: server-rendered page shells (Jinja2) whose small vanilla JS calls the HTTP API.

The pages hold no business logic: every list, action and validation goes through `/api/*` or
`/v1/*` exactly as any API client's would (the session middleware supplies the bearer key). Why
Jinja2 + vanilla JS and no front-end build: every asset ships inside the Python package, `make run`
stays the only set-up, and there is no toolchain or CDN to fetch (the machines have no internet).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from application.errors import ApplicationError, Unauthorized
from entrypoints.http.auth import auth_required, reached_from_outside
from entrypoints.http.errors import error_response
from entrypoints.http.json_body import BodyRefused, load_json
from application.identity.web_sessions import WebSessionStore
from entrypoints.http.ui.session import COOKIE, SESSION_SECONDS, UiSession, new_csrf, session_id_of

HERE = Path(__file__).parent
# (path, template, title, admin only)
PAGES = (
    ("/", "library.html", "Library", False),
    ("/ui/discover", "discover.html", "Discover", False),
    ("/ui/profiles", "profiles.html", "Profiles", False),
    ("/ui/chat", "chat.html", "Chat", False),
    ("/ui/server", "server.html", "Server", True),
    ("/ui/audit", "audit.html", "Audit", True),
    ("/ui/keys", "keys.html", "Keys & users", True),
)
_templates = None


def templates():
    global _templates
    if _templates is None:  # jinja2 only when a page is first served (the CLI never pays for it)
        from starlette.templating import Jinja2Templates

        _templates = Jinja2Templates(directory=str(HERE / "templates"))
    return _templates


def _store(request: Request) -> WebSessionStore:
    return request.app.state.ui_sessions


def _auth_on(request: Request) -> bool:
    return auth_required(request.app.state.container.settings()) or reached_from_outside(request.scope)


async def _viewer(request: Request) -> dict | None:
    """Who is looking: None means "log in first". With auth off, the local admin."""
    if not _auth_on(request):
        return {"email": None, "is_admin": True, "csrf": "", "auth": False}
    session: UiSession | None = _store(request).get(session_id_of(request.scope))
    if session is None:
        return None
    try:  # the key may have been revoked or the user disabled since the login
        principal = await run_in_threadpool(request.app.state.container.api_key_service().authenticate, session.key)
    except Unauthorized:
        _store(request).drop(session_id_of(request.scope))
        return None
    session.is_admin = principal.is_admin
    return {"email": principal.email, "is_admin": principal.is_admin, "csrf": session.csrf, "auth": True}


def _page(path: str, template: str, title: str, admin_only: bool):
    async def page(request: Request) -> Response:
        viewer = await _viewer(request)
        if viewer is None:
            return RedirectResponse(f"/ui/login?next={quote(request.url.path)}", status_code=303)
        nav = [(p, t) for p, _, t, admin in PAGES if viewer["is_admin"] or not admin]
        context = {"request": request, "title": title, "path": path, "nav": nav, "viewer": viewer}
        if admin_only and not viewer["is_admin"]:
            return templates().TemplateResponse(request, "forbidden.html", context, status_code=403)
        return templates().TemplateResponse(request, template, context)

    page.__name__ = f"ui_{template.split('.')[0]}"
    return page


def _local_path(value: str) -> str:
    """`next` only as a path on this server, never an open redirect: browsers read `\\` as `/` and drop tabs
    and newlines in URLs, so `/\\evil.example` or `/<TAB>/evil.example` would become `//evil.example`."""
    if (not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in value)):
        return "/"
    return value


async def login_page(request: Request) -> Response:
    if not _auth_on(request):
        return RedirectResponse("/", status_code=303)
    next_path = _local_path(request.query_params.get("next", "/"))
    return templates().TemplateResponse(request, "login.html", {
        "request": request, "title": "Log in", "path": "/ui/login", "nav": [], "next": next_path,
        "viewer": {"email": None, "is_admin": False, "csrf": "", "auth": True},
    })


def _cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(COOKIE, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


async def login(request: Request) -> Response:
    """Log in with an API key, or email + password (which mints a key, revoked at logout)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return error_response(415, "invalid_request_error", "send the login as application/json")
    try:  # the API's one body parser: a lone surrogate or deep nesting is a 400 here too, not a 500
        body = load_json(await request.body() or b"{}")
    except BodyRefused as exc:
        return error_response(exc.status, "invalid_request_error", str(exc))
    if not isinstance(body, dict):
        return error_response(400, "invalid_request_error", "the body must be a JSON object")
    keys = request.app.state.container.api_key_service()
    minted_id = None
    try:
        if body.get("key"):
            raw = str(body["key"]).strip()
        elif body.get("email") and body.get("password"):
            created = await run_in_threadpool(keys.login, str(body["email"]), str(body["password"]), "web-ui")
            raw, minted_id = created.secret, created.key.id
        else:
            return error_response(400, "invalid_request_error", "give an API key, or an email and a password",
                                  param="key")
        principal = await run_in_threadpool(keys.authenticate, raw)
    except Unauthorized as exc:
        return error_response(401, "authentication_error", str(exc))
    except ApplicationError as exc:  # e.g. a pending user
        return error_response(403, "permission_error", str(exc))
    sid = _store(request).create(UiSession(key=raw, csrf=new_csrf(), email=principal.email,
                                           is_admin=principal.is_admin, minted_key_id=minted_id))
    response = JSONResponse({"ok": True, "email": principal.email, "is_admin": principal.is_admin})
    _cookie(response, request, sid, SESSION_SECONDS)
    return response


async def logout(request: Request) -> Response:
    """End the session (the session middleware already checked its CSRF token)."""
    session = _store(request).drop(session_id_of(request.scope))
    if session is not None and session.minted_key_id is not None:
        keys = request.app.state.container.api_key_service()
        try:
            principal = await run_in_threadpool(keys.authenticate, session.key)
            await run_in_threadpool(keys.revoke, session.minted_key_id, principal)
        except ApplicationError:
            pass  # already revoked or the user is gone: nothing left to end
    response = JSONResponse({"ok": True})
    _cookie(response, request, "", 0)
    return response


def routes() -> list:
    return [
        *(Route(path, _page(path, template, title, admin), methods=["GET"], include_in_schema=False)
          for path, template, title, admin in PAGES),
        Route("/ui/login", login_page, methods=["GET"], include_in_schema=False),
        Route("/ui/login", login, methods=["POST"], include_in_schema=False),
        Route("/ui/logout", logout, methods=["POST"], include_in_schema=False),
        Mount("/ui/static", app=StaticFiles(directory=str(HERE / "static")), name="ui-static"),
    ]
