"""Every page at phone width, with every input labelled, and the train form by keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.faces.web.conftest import Site, log_in, shoot

PAGES = {
    "datasets": "/",
    "analyze": "/ui/datasets/mnist?rows=5",
    "train": "/ui/train",
    "leaderboard": "/ui/leaderboard",
    "predict": "/ui/predict",
    "draw": "/ui/draw",
    "sequences": "/ui/sequences",
}

UNLABELLED = """() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter((el) => el.type !== "hidden" && el.getClientRects().length > 0)
  .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label"))
  .map((el) => el.outerHTML)"""


@pytest.fixture(scope="module")
def phone(browser: Any, mnist_site: Site) -> Iterator[Any]:
    """A phone-sized page (390 px, touch), logged in so every form shows."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    opened = context.new_page()
    log_in(opened, mnist_site)
    yield opened
    context.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_fits_a_phone_and_labels_its_inputs(
    phone: Any, mnist_site: Site, name: str
) -> None:
    phone.goto(mnist_site.url + PAGES[name])
    expect(phone.locator("h1")).to_be_visible()
    overflow = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{name} is {overflow}px wider than the screen"
    assert phone.evaluate(UNLABELLED) == []
    assert phone.locator(".message.error").count() == 0
    shoot(phone, f"phone-{name}")


def test_the_train_form_works_by_keyboard(page: Any, mnist_site: Site) -> None:
    log_in(page, mnist_site, next_path="/ui/train")
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()  # the first stop skips the navigation
    page.locator("#mlp-density-slider").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#mlp-density")).to_have_value("37")
    page.get_by_label("Model type").select_option("logistic")
    expect(page.locator("#mlp-density")).to_be_hidden()  # a logistic regression has no density
    expect(page.get_by_label("C", exact=True)).to_be_visible()
    page.get_by_label("Model type").select_option("cnn")
    expect(page.locator("#cnn-epochs")).to_have_value("6")  # the CNN's own default
    page.get_by_label("Model type").select_option("mlp")
    expect(page.locator("#mlp-density")).to_have_value("37")  # each model keeps its own values
    page.locator("#mlp-density").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("0")
    page.locator("#mlp-epochs").fill("1")
    page.evaluate("document.getElementById('train-form').noValidate = true")
    page.keyboard.press("Enter")  # submits; the server refuses with a message, not a trace
    expect(page.get_by_role("alert")).to_contain_text("density must be an integer in [1, 100000]")
    shoot(page, "train-form-refused")
