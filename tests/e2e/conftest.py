"""Browser suite fixtures: Debian's Chromium driven by Playwright, a real server, screenshots.

Without /usr/bin/chromium (or the playwright package) the suite fails when CI is set, and
is skipped otherwise.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.e2e.console_http import set_console_password
from tests.functional.server import ServerProcess
from tests.needs import unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ROOT_PASSWORD = "Browser-Pa55word!"


def _unavailable(reason: str) -> None:
    unavailable(f"The browser suite cannot run: {reason}. Install Debian's chromium "
                "(apt-get install -y chromium) and the test extras.")


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """Module-scoped: Playwright's sync API holds an event loop on this thread while it runs,
    so it must be stopped before other modules' tests call asyncio.run()."""
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    process = ServerProcess(tmp_path_factory.mktemp("browser") / "data",
                            args=["--delivery-interval", "1", "--digest-interval", "5"]).start()
    set_console_password(str(process.data_dir), ROOT_PASSWORD)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


# Every form control must have an accessible name; the page must not scroll sideways.
_AUDIT = """() => {
  const unlabelled = [];
  for (const el of document.querySelectorAll('input, select, textarea, button')) {
    if (el.type === 'hidden') continue;
    const named = el.labels && el.labels.length || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim());
    if (!named) unlabelled.push(el.outerHTML.slice(0, 120));
  }
  return {unlabelled, scrollWidth: document.documentElement.scrollWidth,
          width: window.innerWidth};
}"""


@pytest.fixture(scope="session")
def shoot(screenshots: Path) -> Callable:
    """``shoot(page, name)``: checks labels and width, and saves the page at both widths."""
    counter = iter(range(1, 1000))

    def take(page, name: str) -> None:  # type: ignore[no-untyped-def]
        number = next(counter)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        original = page.viewport_size
        for label, size in (("1280x800", DESKTOP), ("390x844", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_timeout(100)  # layout settles after the resize
            audit = page.evaluate(_AUDIT)
            assert not audit["unlabelled"], f"{name}: controls without a label: " \
                                            f"{audit['unlabelled']}"
            assert audit["scrollWidth"] <= audit["width"], \
                f"{name} scrolls sideways at {size['width']} px ({audit['scrollWidth']} px)"
            page.screenshot(path=str(screenshots / f"{number:02d}-{slug}-{label}.png"),
                            full_page=True)
        page.set_viewport_size(original)

    return take


@pytest.fixture(scope="module")
def page(browser) -> Iterator:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # 4xx answers to refused forms are expected; anything else the console logs is not
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
           and "Failed to load resource" not in msg.text else None)
    yield tab
    context.close()
    assert not errors, f"the browser reported errors: {errors}"
