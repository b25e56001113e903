"""Who may change things through the browser, and proof that a form came from our own pages.

The web UI follows the API's rule: reading is open (unless
``HEADWATER_API_READ_REQUIRES_TOKEN`` is set), writing needs
``HEADWATER_API_TOKEN``, and with no token configured writes are off. A browser
cannot send a bearer header from a plain form, so the token is typed once into
the login page; the server answers with a session cookie that holds an issue
time and an HMAC of it keyed by the token, never the token itself. The cookie is
``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS, and expires after
`SESSION_TTL_S`; changing the token ends every session.

Cross-site request forgery is refused twice over: the cookie is never sent on a
request started by another site (``SameSite=Strict``), and every POST must carry
an ``Origin`` (or, failing that, ``Referer``) whose host is this server's host,
and must not be marked ``Sec-Fetch-Site: cross-site``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlparse

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "SESSION_COOKIE",
    "SESSION_TTL_S",
    "check_token",
    "clear_session",
    "has_session",
    "same_origin",
    "start_session",
]

SESSION_COOKIE = "headwater_session"
SESSION_TTL_S = 12 * 3600
_PURPOSE = b"headwater-web-session|"


def _mac(token: SecretStr, issued: int) -> str:
    key = token.get_secret_value().encode()
    return hmac.new(key, _PURPOSE + str(issued).encode(), hashlib.sha256).hexdigest()


def check_token(token: SecretStr | None, typed: str) -> bool:
    """Whether ``typed`` is the configured token (constant time); False when none is set."""
    if token is None:
        return False
    return hmac.compare_digest(typed.encode(), token.get_secret_value().encode())


def has_session(token: SecretStr | None, request: Request, *, now: float | None = None) -> bool:
    """A cookie minted by `start_session` with the current token, and not yet expired."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is None or not cookie or "." not in cookie:
        return False
    issued_text, mac = cookie.split(".", 1)
    if not issued_text.isdigit():
        return False
    issued = int(issued_text)
    moment = time.time() if now is None else now
    if not issued <= moment + 60 or moment - issued > SESSION_TTL_S:
        return False
    return hmac.compare_digest(mac, _mac(token, issued))


def start_session(token: SecretStr, request: Request, response: Response) -> None:
    issued = int(time.time())
    response.set_cookie(
        SESSION_COOKIE,
        f"{issued}.{_mac(token, issued)}",
        max_age=SESSION_TTL_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


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
