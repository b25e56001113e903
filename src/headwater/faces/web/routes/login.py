"""Logging in with the server's token, and out; see `headwater.faces.web.access`."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from headwater.faces.web import access
from headwater.faces.web.context import PageDep, WebRoute

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this server: never an absolute URL (an open redirect)."""
    if not target:
        return "/"
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login")
def login_form(page: PageDep, next: str | None = None) -> Response:
    """The token form; says plainly when the server has no token (writes are off)."""
    return page.render("login.html", title="Log in", section="login", next=_safe_next(next))


@router.post("/login")
async def log_in(request: Request, page: PageDep) -> Response:
    form = await request.form()
    target = _safe_next(str(form.get("next") or "/"))
    typed = str(form.get("token") or "")
    token = page.config.token
    if token is None:
        return page.render(
            "login.html",
            status=503,
            title="Log in",
            section="login",
            next=target,
            error="This server has no HEADWATER_API_TOKEN, so there is nothing to log in with; "
            "writes are off.",
        )
    if not access.check_token(token, typed):
        return page.render(
            "login.html",
            status=401,
            title="Log in",
            section="login",
            next=target,
            error="That token does not match the server's HEADWATER_API_TOKEN; check it and "
            "try again.",
        )
    response = RedirectResponse(target, status_code=303)
    access.start_session(token, request, response)
    return response


@router.post("/logout")
def log_out(page: PageDep) -> Response:
    response = RedirectResponse("/", status_code=303)
    access.clear_session(response)
    return response
