"""Real headless Chromium (Debian's, through Playwright) against pytest-django's live server.

Playwright's sync API keeps an asyncio loop running in this thread while it is started,
so Django's async-safety check would refuse every ORM call the test makes (nothing here
is async, hence DJANGO_ALLOW_ASYNC_UNSAFE), and ``asyncio.run`` (the engine's gateway
calls) cannot start here. Playwright therefore lives for one test module at a time, and
the switch only while it does: the tests that run after the browser tests see neither.
The live server serves static files through staticfiles' handler, so pages have their CSS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import shot

# IPv4 only: the live server binds one address and Chromium must not try ::1 first.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM = Path("/usr/bin/chromium")
DEFAULT_TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = "Debian's Chromium is missing: `make browser-deps` installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI must run the browser tests, never skip them
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(chromium, live_server, request) -> Iterator[Any]:
    """``new_page()`` opens a page in a fresh browser context (its own cookies)."""
    contexts = []

    def _new_page() -> Any:
        context = chromium.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.foreign_requests = []  # anything not served by the live server
        page.on(
            "request",
            lambda req: (
                None
                if req.url.startswith((live_server.url, "data:", "about:"))
                else page.foreign_requests.append(req.url)
            ),
        )
        return page

    yield _new_page
    failed = getattr(request.node, "rep_call", None)
    for number, context in enumerate(contexts):
        if failed is not None and failed.failed:
            for page_number, page in enumerate(context.pages):
                shot(page, f"FAILED-{request.node.name}-{number}-{page_number}")
        context.close()


@pytest.fixture
def page(new_page) -> Any:
    return new_page()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
