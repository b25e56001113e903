"""What every page handler gets: the core's services, who is signed in, and how to answer.

`Page` is built per request from what the app's lifespan opened (the
`WarehouseService` with its training queue and model cache, and the one
`Workspace`), so the web UI shares them with the API instead of opening its own.

`WebRoute` is the router's route class: it refuses cross-site posts before the
handler runs, and turns every error into a page (or, for the scripts' JSON
calls, a JSON message) that names the problem, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.responses import JSONResponse, RedirectResponse, Response

from headwater.errors import DataError, HeadwaterError, locate
from headwater.faces.config import ApiConfig
from headwater.faces.http import OPAQUE_STATUSES, Problem, file_name, scrub, status_of
from headwater.faces.web import access
from headwater.faces.web.results import ResultStore
from headwater.flows.service import WarehouseService
from headwater.flows.workspace import Workspace

__all__ = [
    "LoginRequired",
    "Page",
    "PageDep",
    "WebError",
    "WebRoute",
    "WebState",
    "describe",
    "finite",
    "json_message",
]

log = logging.getLogger("headwater.web")

HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class WebError(Exception):
    """A refusal of the web face itself (a form that makes no sense), shown as a message."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        self.message, self.status = message, status
        super().__init__(message)


class LoginRequired(Exception):
    """The page needs a signed-in browser; the answer is a redirect to the login page."""

    def __init__(self, back_to: str) -> None:
        self.back_to = back_to
        super().__init__(back_to)


@dataclass
class WebState:
    """Built once by `mount`: the templates and the store of scored uploads."""

    templates: Jinja2Templates
    results: ResultStore = field(default_factory=ResultStore)


def describe(error: Exception) -> tuple[int, str]:
    """A status and a message a person can act on; server paths and internals left out."""
    if isinstance(error, WebError):
        return error.status, error.message
    if isinstance(error, Problem):
        return error.status, error.detail
    if isinstance(error, RequestValidationError):
        parts = []
        for issue in error.errors():
            where = ".".join(str(p) for p in issue.get("loc", ()) if p not in {"body", "query"})
            parts.append(f"{where or 'the form'}: {issue.get('msg', 'is invalid')}")
        return 422, scrub("; ".join(parts) or "the form is invalid")
    if isinstance(error, HeadwaterError):
        status, title = status_of(error)
        if status in OPAQUE_STATUSES:
            log.error("web request failed: %s", error, exc_info=error)
            return status, f"{title}: the server log has the cause. Try again shortly."
        if isinstance(error, DataError):
            prefix = locate(file_name(error.path), error.row, error.field)
            return status, f"{title}. {prefix}{scrub(error.reason)}"
        return status, f"{title}. {scrub(str(error))}"
    log.error("web request crashed", exc_info=error)
    return 500, "Something went wrong on the server; the server log has the cause."


class Page:
    """One request's view of the app: services, access, and rendering with the shared layout."""

    def __init__(self, request: Request) -> None:
        state = request.app.state
        service = getattr(state, "service", None)
        workspace = getattr(state, "workspace", None)
        if not isinstance(service, WarehouseService) or not isinstance(workspace, Workspace):
            raise RuntimeError("the app's lifespan has not opened the workspace")
        self.request = request
        self.service: WarehouseService = service
        self.workspace: Workspace = workspace
        self.config: ApiConfig = state.config
        self.web: WebState = state.web
        self.signed_in = access.has_session(self.config.token, request)

    @property
    def writes_enabled(self) -> bool:
        return self.config.token is not None

    def here(self) -> str:
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def require_read(self) -> None:
        if self.config.read_requires_token and not self.signed_in:
            raise LoginRequired(self.here() if self.request.method == "GET" else "/")

    def require_write(self, back_to: str) -> None:
        """A configured token and a signed-in browser, or a message saying which is missing."""
        if not self.writes_enabled:
            raise WebError(
                "Writes are off: this server has no HEADWATER_API_TOKEN, so nothing can be "
                "ingested, trained or served from here. Set it on the server and log in.",
                status=503,
            )
        if not self.signed_in:
            raise LoginRequired(back_to)

    def render(
        self,
        template: str,
        context: Mapping[str, object] | None = None,
        *,
        status: int = 200,
        **extra: object,
    ) -> Response:
        """The template with the layout's values (who is signed in, where we are) added."""
        values: dict[str, object] = {
            "signed_in": self.signed_in,
            "writes_enabled": self.writes_enabled,
            "here": self.here(),
            "login_url": "/ui/login?next=" + quote(self.here(), safe=""),
            **(context or {}),
            **extra,
        }
        return self.web.templates.TemplateResponse(
            self.request, template, values, status_code=status
        )


async def get_page(request: Request) -> Page:
    page = Page(request)
    if not request.url.path.startswith("/ui/login"):
        page.require_read()
    return page


PageDep = Annotated[Page, Depends(get_page)]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _login_redirect(request: Request, back_to: str) -> Response:
    target = "/ui/login?next=" + quote(back_to, safe="")
    if _wants_json(request):
        return JSONResponse(
            {"error": "Log in first: this needs the server's token.", "login": target},
            status_code=401,
        )
    return RedirectResponse(target, status_code=303)


def error_response(request: Request, error: Exception) -> Response:
    """The message page (or JSON for the scripts) for an error no handler showed itself."""
    if isinstance(error, LoginRequired):
        return _login_redirect(request, error.back_to)
    status, message = describe(error)
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    state: WebState = request.app.state.web
    config: ApiConfig = request.app.state.config
    return state.templates.TemplateResponse(
        request,
        "error.html",
        {
            "title": "Something needs fixing",
            "error": message,
            "signed_in": access.has_session(config.token, request),
            "writes_enabled": config.token is not None,
            "here": request.url.path,
            "login_url": "/ui/login",
        },
        status_code=status,
    )


class WebRoute(APIRoute):
    """Same-origin check on every POST; errors become pages; security headers on answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[object, object, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            config: ApiConfig = request.app.state.config
            signed_in = access.token_login(config.token, request)
            if signed_in is not None:  # ?token=: the login URL `headwater serve` printed
                response: Response = signed_in
            elif request.method not in {"GET", "HEAD"} and not access.same_origin(request):
                response = JSONResponse(
                    {"error": "Refused: this form was not sent from this server's own pages."},
                    status_code=403,
                )
            else:
                try:
                    response = await handler(request)
                except Exception as error:  # every error becomes a readable message
                    response = error_response(request, error)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return route


def finite(value: object) -> object:
    """``value`` with NaN and infinities (a diverged loss) replaced by None, for JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def json_message(payload: Mapping[str, object], *, status: int = 200) -> Response:
    """JSON for the page scripts, with NaN and infinities written as null."""
    text = json.dumps(finite(payload), allow_nan=False, default=str)
    return Response(text, status_code=status, media_type="application/json")
