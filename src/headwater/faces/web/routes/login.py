"""Logging in with the server's token, and out; see `headwater.faces.web.access`."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
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


class LoginForm(BaseModel):
    """The login form's fields; ``next`` is kept to a path on this server."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(default="", max_length=1024)
    next: str = "/"

    @field_validator("next", mode="after")
    @classmethod
    def _on_this_site(cls, target: str) -> str:
        return _safe_next(target)


LINK_FAILED = (
    "The token in that login link does not match this server's: it changes each time "
    "`headwater serve` starts without HEADWATER_API_TOKEN. Open the link it printed last."
)


@router.get("/login")
def login_form(page: PageDep, next: str | None = None, failed: str | None = None) -> Response:
    """The token form; says plainly when the server has no token (writes are off)."""
    return page.render(
        "login.html",
        title="Log in",
        section="login",
        next=_safe_next(next),
        error=LINK_FAILED if failed == "token" else None,
    )


@router.post("/login")
async def log_in(request: Request, page: PageDep) -> Response:
    form = await request.form(max_files=0, max_fields=4)
    try:
        fields = LoginForm.model_validate(dict(form))
    except ValidationError:
        fields = LoginForm()
    token = page.config.token
    if token is None:
        return page.render(
            "login.html",
            status=503,
            title="Log in",
            section="login",
            next=fields.next,
            error="This server has no HEADWATER_API_TOKEN, so there is nothing to log in with; "
            "writes are off.",
        )
    if not access.check_token(token, fields.token):
        return page.render(
            "login.html",
            status=401,
            title="Log in",
            section="login",
            next=fields.next,
            error="That token does not match the server's HEADWATER_API_TOKEN; check it and "
            "try again.",
        )
    response = RedirectResponse(fields.next, status_code=303)
    access.start_session(token, request, response)
    return response


@router.post("/logout")
def log_out(page: PageDep) -> Response:
    response = RedirectResponse("/", status_code=303)
    access.clear_session(response)
    return response
