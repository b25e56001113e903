"""Who may write through the web UI, and refusals of forged or foreign requests (no browser)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from headwater.faces.web.access import SESSION_COOKIE
from headwater.settings import Settings
from tests.faces.api.conftest import TOKEN
from tests.faces.web.conftest import Site, _serve

pytestmark = pytest.mark.parametrize("backend", ["duckdb"])


def _logged_in(site: Site) -> httpx.Client:
    client = site.client()
    answer = client.post("/ui/login", data={"token": TOKEN, "next": "/ui/train"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/train"
    return client


def test_logging_in_sets_a_strict_http_only_cookie_without_the_token(site: Site) -> None:
    client = site.client()
    answer = client.post("/ui/login", data={"token": TOKEN, "next": "/"})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert TOKEN not in cookie
    assert "Log out" in client.get("/").text


def test_a_wrong_token_is_refused_with_a_message(site: Site) -> None:
    answer = site.client().post("/ui/login", data={"token": "not-the-token-at-all"})
    assert answer.status_code == 401
    assert "does not match the server" in answer.text
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_login_only_redirects_within_the_site(site: Site) -> None:
    answer = site.client().post("/ui/login", data={"token": TOKEN, "next": "https://evil.test/"})
    assert answer.headers["location"] == "/"


def test_writing_without_a_session_asks_to_log_in(site: Site) -> None:
    answer = site.client().post("/ui/train", data={"dataset": "x"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/login?next=")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.test"},
        {"Origin": "null"},
        {"Referer": "https://evil.test/page"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["foreign-origin", "null-origin", "foreign-referer", "cross-site"],
)
def test_posts_from_other_sites_are_refused_even_with_a_session(
    site: Site, headers: dict[str, str]
) -> None:
    client = _logged_in(site)
    del client.headers["Origin"]
    answer = client.post("/ui/train", data={"dataset": "x"}, headers=headers)
    assert answer.status_code == 403
    assert "not sent from this server's own pages" in answer.text


def test_a_post_with_no_origin_at_all_is_refused(site: Site) -> None:
    client = _logged_in(site)
    del client.headers["Origin"]
    assert client.post("/ui/logout").status_code == 403


def test_errors_are_pages_naming_the_problem(site: Site) -> None:
    client = site.client()
    missing = client.get("/ui/datasets/nothing_here")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "dataset &#39;nothing_here&#39; does not exist" in missing.text
    assert "Traceback" not in missing.text
    refused = client.get("/ui/compare", params={"run": "abc"})
    assert refused.status_code == 422 and "Select exactly two runs" in refused.text
    assert "default-src 'self'" in refused.headers["content-security-policy"]


@pytest.fixture
def read_only(settings: Settings) -> Iterator[Site]:
    yield from _serve(settings.model_copy(update={"api_token": None}))


def test_without_a_token_the_ui_is_read_only(read_only: Site) -> None:
    client = read_only.client()
    page = client.get("/")
    assert page.status_code == 200 and "Read-only" in page.text
    answer = client.post("/ui/train", data={"dataset": "x"}, headers={"Accept": "application/json"})
    assert answer.status_code == 503
    assert "HEADWATER_API_TOKEN" in answer.json()["error"]


@pytest.fixture
def private(settings: Settings) -> Iterator[Site]:
    yield from _serve(
        settings.model_copy(update={"api_token": SecretStr(TOKEN)}), read_requires_token=True
    )


def test_reads_need_a_session_when_the_api_requires_a_token_for_reads(private: Site) -> None:
    client = private.client()
    answer = client.get("/ui/leaderboard")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fleaderboard"
    assert client.get("/ui/login").status_code == 200
    client.post("/ui/login", data={"token": TOKEN})
    assert client.get("/ui/leaderboard").status_code == 200
