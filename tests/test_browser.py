"""End to end in a real browser: Debian's chromium driven by Playwright.

Skipped when chromium or playwright is missing, unless FGG_REQUIRE_BROWSER=1 (set by .ci/run,
which installs both). Screenshots go to tests/artifacts/ (git-ignored)."""
import os
import shutil
from pathlib import Path

import pytest

from tests.test_app import controller, free_port, server  # noqa: F401  (fixtures)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed"
    if missing is None and not shutil.which(CHROMIUM):
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    if missing:
        if os.environ.get("FGG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FGG_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def test_generate_toggle_and_compare_in_browser(browser, server):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(90_000)
    page.goto(server)
    chords = page.locator("#chords textarea")
    chords.fill("Am F | C G")
    page.locator("#generate").click()
    page.locator("#audio-out audio").first.wait_for(state="attached")
    page.screenshot(path=str(ARTIFACTS / "1_generated.png"), full_page=True)
    assert "out_of_key_notes" in page.content()

    fgg = page.locator("#fgg-toggle input[type=checkbox]")
    assert fgg.is_checked()
    fgg.uncheck()
    assert not fgg.is_checked()
    page.locator("#generate").click()
    page.locator("#audio-out audio").first.wait_for(state="attached")
    page.screenshot(path=str(ARTIFACTS / "2_fgg_off.png"), full_page=True)

    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare").click()
    page.locator("#audio-a audio").first.wait_for(state="attached")
    page.locator("#audio-b audio").first.wait_for(state="attached")
    page.screenshot(path=str(ARTIFACTS / "3_compare.png"), full_page=True)
    assert page.get_by_text("notes changed A→B").count() >= 1

    page.get_by_role("tab", name="Generate").click()
    page.locator("#chords textarea").fill("C | Hm")  # a bad chord shows the message, not a trace
    page.locator("#generate").click()
    page.get_by_text("unrecognised chord symbol 'Hm'").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "4_error.png"), full_page=True)

    page.get_by_role("tab", name="Evaluate").click()  # the committed runs, one per model
    page.get_by_text("FGG strength trade-off").first.wait_for()
    page.locator("#eval-model").get_by_text("small").click()
    page.screenshot(path=str(ARTIFACTS / "5_evaluate.png"), full_page=True)
    page.close()
