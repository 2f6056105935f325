"""Shared fixtures for the core's tests (nicobot.testing's fixtures load as a pytest plugin)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nicobot.cli.workers import ChromaServer

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Commands run in-process (click's CliRunner) copy a project's .env into
    os.environ; later tests' servers must not inherit another project's password."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def chromium_path() -> str:
    path = os.environ.get("NICOBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "browser tests need Chromium: apt-get install chromium (or set NICOBOT_CHROMIUM)"
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Playwright's sync API runs its own event loop: keep it to the browser tests' module,
    so that it is closed before async tests in other modules run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, page: Any) -> Any:
    """Save a screenshot when NICOBOT_SCREENSHOTS names a directory (for looking at pages)."""

    def take(name: str) -> None:
        directory = os.environ.get("NICOBOT_SCREENSHOTS")
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)

    return take


STORE_BACKENDS = ("sqlite", "postgres")


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """Each store the contract suite runs on; PostgreSQL on nicobot-postgres's test server."""
    return str(request.param)


@pytest.fixture
def store_env(store_backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that points a project at ``store_backend``."""
    if store_backend == "sqlite":
        return {}
    url = request.getfixturevalue("postgres_url")
    return {"NICOBOT_STORE__BACKEND": "postgres", "NICOBOT_STORE__URL": url}


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A real Chroma server (`chroma run`, as `nicobot serve --workers` starts one) on a
    free loopback port, on its own folder."""
    folder = tmp_path / "chroma-server"
    folder.mkdir()
    server = ChromaServer(folder).start()
    yield server
    server.stop()
