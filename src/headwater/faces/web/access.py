"""Who may change things through the browser, and proof that a form came from our own pages.

The web UI follows the API's rule: reading is open (unless
``HEADWATER_API_READ_REQUIRES_TOKEN`` is set), writing needs
``HEADWATER_API_TOKEN``, and with no token configured writes are off. A browser
cannot send a bearer header from a plain form, so the token is typed once into
the login page, or arrives once in the login URL `headwater serve` prints
(``/?token=...``, see `token_login`); the server answers with a session cookie
signed by ``itsdangerous`` with the token as key (a timestamp and its HMAC,
never the token itself). The cookie is ``HttpOnly``, ``SameSite=Strict``,
``Secure`` over HTTPS, and expires after `SESSION_TTL_S`; changing the token
ends every session.

Cross-site request forgery is refused twice over: the cookie is never sent on a
request started by another site (``SameSite=Strict``), and every POST must carry
an ``Origin`` (or, failing that, ``Referer``) whose host is this server's host,
and must not be marked ``Sec-Fetch-Site: cross-site``.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode, urlparse

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

__all__ = [
    "SESSION_COOKIE",
    "SESSION_TTL_S",
    "TOKEN_PARAMETER",
    "check_token",
    "clear_session",
    "has_session",
    "same_origin",
    "start_session",
    "token_login",
]

SESSION_COOKIE = "headwater_session"
SESSION_TTL_S = 12 * 3600
TOKEN_PARAMETER = "token"  # noqa: S105  # a query parameter's name, not a secret
"""``?token=`` on any page signs the browser in, as the login URL `headwater serve` prints."""
_SALT = "headwater-web-session"


def _signer(token: SecretStr) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(token.get_secret_value(), salt=_SALT)


def check_token(token: SecretStr | None, typed: str) -> bool:
    """Whether ``typed`` is the configured token (constant time); False when none is set."""
    if token is None:
        return False
    return hmac.compare_digest(typed.encode(), token.get_secret_value().encode())


def has_session(token: SecretStr | None, request: Request, *, max_age: int = SESSION_TTL_S) -> bool:
    """A cookie signed by `start_session` with the current token, and not yet expired."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is None or not cookie:
        return False
    try:
        _signer(token).loads(cookie, max_age=max_age)
    except BadSignature:  # also SignatureExpired, its subclass
        return False
    return True


def start_session(token: SecretStr, request: Request, response: Response) -> None:
    """Set the session cookie: a timestamped signature keyed by the token, never the token."""
    response.set_cookie(
        SESSION_COOKIE,
        _signer(token).dumps("web"),
        max_age=SESSION_TTL_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def token_login(token: SecretStr | None, request: Request) -> Response | None:
    """Answer a GET that carries ``?token=``: sign in and redirect to the same URL without it.

    The redirect keeps the token out of the address bar, the history and any Referer. A
    wrong token signs nobody in and goes to the login page, which says why.
    """
    typed = request.query_params.get(TOKEN_PARAMETER)
    if typed is None or request.method not in {"GET", "HEAD"}:
        return None
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAMETER]
    target = request.url.path + (f"?{urlencode(kept)}" if kept else "")
    if token is None or not check_token(token, typed):
        query = urlencode({"next": target, "failed": "token"})
        return RedirectResponse(f"/ui/login?{query}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    start_session(token, request, response)
    return response


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def same_origin(request: Request) -> bool:
    """The request was sent by a page of this server (see the module docstring).

    Hosts are compared, not schemes: behind a TLS-terminating proxy the server
    sees http while the browser says https.
    """
    if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
        return False
    host = request.headers.get("host", "").lower()
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not host or not claimed or claimed == "null":
        return False
    return urlparse(claimed).netloc.lower() == host
