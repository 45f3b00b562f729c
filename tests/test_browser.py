"""End to end in a real browser: Debian's chromium driven by Playwright.

Skipped when chromium or playwright is missing, unless FGG_REQUIRE_BROWSER=1 (set by .ci/run,
which installs both). Screenshots go to tests/artifacts/ (git-ignored)."""

import datetime
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch

from tests.test_app import controller, free_port, server  # noqa: F401  (fixtures)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


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
    page.locator("#generate").wait_for()
    chords = page.locator("#chords textarea")
    chords.fill("Am F | C G")
    page.locator("#generate").click()
    page.locator("#audio-out audio").first.wait_for(state="attached")
    page.get_by_text("notes in").first.wait_for()
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
    page.locator("#midi-a a").first.wait_for(state="attached")  # both sides can be downloaded
    page.locator("#midi-b a").first.wait_for(state="attached")
    page.screenshot(path=str(ARTIFACTS / "3_compare.png"), full_page=True)
    assert page.get_by_text("notes changed A→B").count() >= 1

    page.get_by_role("tab", name="Generate").click()
    page.locator("#chords textarea").fill("C | Hm")  # a bad chord says so, and the last result stays
    page.locator("#generate").click()
    page.get_by_text("unrecognised chord symbol 'Hm'").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "4_error.png"), full_page=True)
    assert page.locator("#audio-out audio").count() >= 1 and page.locator("#midi-out a").count() >= 1
    assert "Error" not in page.locator("#audio-out").inner_text()

    page.get_by_role("tab", name="Evaluate").click()  # the committed runs, one per model, in words
    page.get_by_text("FGG strength trade-off").first.wait_for()
    page.locator("#eval-model").get_by_text("combined-paper", exact=True).click()  # melody + accompaniment
    page.locator("#eval-summary").get_by_text("out-of-key melody").first.wait_for()
    page.locator("#eval-model").get_by_text("small", exact=True).click()
    page.locator("#eval-summary").get_by_text("chord accuracy (0–1)").first.wait_for()
    assert "out_of_key_rate_ci95" not in page.locator("#eval-summary").inner_text()
    page.locator("#eval-metric input").click()
    page.locator("#eval-metric input").fill("diversity")
    page.get_by_role("option", name=re.compile("diversity")).first.click()
    page.locator("#eval-metric-help").get_by_text("not computed in this run").wait_for()
    page.screenshot(path=str(ARTIFACTS / "5_evaluate.png"), full_page=True)
    # The out-of-key chart plots the table's percentages (the committed small run).
    page.locator("#eval-metric input").click()
    page.locator("#eval-metric input").fill("out-of-key (our")
    page.get_by_role("option", name=re.compile(r"out-of-key \(our table\)")).first.click()
    plot = "document.querySelector('#eval-metric-plot .js-plotly-plot')"
    page.wait_for_function(f"{plot}?._fullData?.[0]?.y?.length > 0")  # as plotted (decoded)
    plotted = page.evaluate(
        f"(() => {{ const d = {plot}._fullData[0]; "
        "return Object.fromEntries(Array.from(d.x, (x, i) => [x, d.y[i]])) })()"
    )
    # The table's text: its headers separated by "\n\t\n", a blank line, then its cells one per line.
    head, _, body = page.locator("#eval-summary").inner_text().partition("\n\n\n")
    headers = [h.strip().split("\n")[-1] for h in head.split("\n\t\n")]
    cells = body.strip().split("\n")
    rows = [cells[i : i + len(headers)] for i in range(0, len(cells), len(headers))]
    column = next(i for i, name in enumerate(headers) if name.startswith("out-of-key (our table)"))
    table = {row[headers.index("system")]: row[column] for row in rows}
    assert set(plotted) == set(table) and len(plotted) >= 6
    for system, value in plotted.items():
        assert table[system].startswith(f"{value:.2f} %"), (system, value, table[system])
    page.close()


def test_first_visit_segment_picker_bars_and_cfg(browser, server, controller):  # noqa: F811
    """A segment is found by song and key, and replaces chords, melody, tempo and rhythm
    together, visibly; bars follow the chords; CFG is off (and says why) with chords alone."""
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(60_000)
    page.goto(server)
    open_more_options(page)
    # On first load the radio and the line under it say the same.
    assert page.locator("#melody-source").get_by_label("none (chords only)").is_checked()
    assert "Melody: none" in page.locator("#melody-status").inner_text()
    cfg = page.locator("#cfg input[type=number]")
    assert cfg.is_disabled() and page.get_by_text("no effect with chords alone").count() >= 1
    song_label, song = controller.song_choices()[1]
    page.locator("#song-picker input").click()
    page.locator("#song-picker input").fill(f"song {song:03d}")
    page.get_by_role("option", name=song_label).click()
    first_label, first = controller.segment_choices(song)[0]
    page.locator("#segment-picker input").click()
    page.get_by_role("option", name=first_label).click()
    text, _, melody = controller.segment_fields(first)
    page.wait_for_function(f"document.querySelector('#chords textarea').value === {json.dumps(text)}")
    page.locator("#melody-status").get_by_text(melody.removeprefix("Melody: ").rstrip(".")).wait_for()
    assert page.locator("#rhythm input").input_value() == "from segment"
    page.wait_for_function("!document.querySelector('#cfg input[type=number]').disabled")
    assert page.locator("#melody-source").get_by_label("from a POP909 segment").is_checked()
    page.locator("#clear-segment").click()
    page.locator("#melody-status").get_by_text("none").wait_for()
    page.wait_for_function("document.querySelector('#melody-source input[value=none]').checked")
    page.wait_for_function("document.querySelector('#cfg input[type=number]').disabled")
    page.locator("#chords textarea").fill(" | ".join(["C G"] * 40))
    page.wait_for_function("document.querySelector('#bars input[type=number]').value === '32'")
    page.locator("#chords textarea").fill("C | F | G | C | Am | F")
    page.wait_for_function("document.querySelector('#bars input[type=number]').value === '6'")
    page.locator("#style-0").click()  # a style preset: chords, strict scale, the melody-writing model
    note = page.locator("#style-note")
    note.get_by_text("8 bars").wait_for()  # it says what it set, Bars and Model among them
    assert "D Dorian" in note.inner_text() and "combined" in note.inner_text()
    page.wait_for_function("document.querySelector('#chords textarea').value === 'Dm7 | G7 | Dm7 | G7'")
    page.wait_for_function("document.querySelector('#bars input[type=number]').value === '8'")
    page.locator("#melody-status").get_by_text("written by the combined model").wait_for()
    assert page.locator("#melody-source").get_by_label("generate one").is_checked()
    page.locator("#chords textarea").fill("C | F | G | C | Am")  # new chords: bars follow them again
    page.wait_for_function("document.querySelector('#bars input[type=number]').value === '5'")
    note.get_by_text("preset left").wait_for()  # and the note says what stays set
    page.locator("#melody-source").get_by_label("from a POP909 segment").check()  # back to a given melody
    page.locator("#melody-status").get_by_text("none yet").wait_for()  # the radio and the line agree
    page.wait_for_function("document.querySelector('#model input').value.startsWith('paper')")
    page.locator("#melody-source").get_by_label("generate one").check()
    page.locator("#melody-status").get_by_text("written by the combined model").wait_for()
    page.locator("#melody-source").get_by_label("none (chords only)").check()
    page.locator("#melody-status").get_by_text("none — the accompaniment follows the chords alone").wait_for()
    page.close()


def open_more_options(page) -> None:
    page.locator("#more-options").get_by_text("More options").first.click()
    page.locator("#song-picker").wait_for()


def in_viewport(page, selector: str) -> bool:
    """Whether the element is wholly on the screen as it is (without scrolling)."""
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


@pytest.mark.parametrize("width, height", [(1400, 900), (390, 844)])
def test_the_first_screen_reads_chords_as_meant_and_shows_errors_where_the_eye_is(
    browser,
    server,  # noqa: F811
    width,
    height,
):
    """Generate is on the first screen; "Am F C G" is announced and generated as 4 bars of one
    chord each; a bad chord's error is next to the button, with no ✓ left from before; the
    admin view is not on the public page, and the participant's page links nowhere."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(90_000)
    page.goto(server)
    page.locator("#generate").wait_for()
    assert in_viewport(page, "#generate") and in_viewport(page, "#chords textarea")
    page.locator("#chords textarea").fill("Am F C G")
    page.locator("#chords-reading").get_by_text("Read as 4 bars: Am | F | C | G").wait_for()
    page.locator("#generate").click()
    page.locator("#generate-status").get_by_text("notes in").wait_for()
    assert "✓ 4 bars," in page.locator("#generate-status").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"first_screen_{width}.png"))

    page.locator("#chords textarea").fill("H7 | Cmaj")
    page.locator("#chords-reading").get_by_text("unrecognised chord symbol 'H7'").wait_for()
    page.locator("#generate").click()
    status = page.locator("#generate-status")
    status.get_by_text("unrecognised chord symbol 'H7'").wait_for()
    assert "✓" not in status.inner_text() and "previous request" in status.inner_text()
    # Where the eye is: next to the button, or (a phone, the button at the screen's foot) under the chords.
    assert "unrecognised chord symbol 'H7'" in page.locator("#chords-reading").inner_text()
    assert in_viewport(page, "#generate-status") or in_viewport(page, "#chords-reading")
    page.screenshot(path=str(ARTIFACTS / f"first_screen_error_{width}.png"))

    assert page.get_by_role("tab", name=re.compile("admin|results", re.I)).count() == 0
    page.goto(server + "admin")
    page.locator("#admin-password").wait_for()
    page.goto(server + "listen")
    page.locator("#listening-start").wait_for()
    links = page.evaluate("[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    assert not [href for href in links if href and (href in ("/", "./", "..") or href.startswith(server))], links
    page.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


# Each visible dropdown: its label, where its text ends (inside the padding) and where its arrow begins.
DROPDOWN_TEXT_AND_ARROW = """[...document.querySelectorAll('.secondary-wrap')].filter(w => w.offsetParent).map(w => {
  const input = w.querySelector('input'), arrow = w.querySelector('.icon-wrap');
  if (!arrow) return [input.getAttribute('aria-label'), 0, 0];
  const end = input.getBoundingClientRect().right - parseFloat(getComputedStyle(input).paddingRight);
  return [input.getAttribute('aria-label'), Math.round(end), Math.round(arrow.getBoundingClientRect().left)];
})"""
SCREENS = {
    "Generate": "generate",
    "Compare": "compare",
    "Evaluate": "evaluate",
    "Listen": "listening_link",
}


class Unhurried(torch.nn.Module):
    """A tiny model that takes ``seconds`` per forward, as a real one on a slow CPU might: a
    32-bar piece then takes seconds, long enough to see whether its audio starts before the end."""

    def __init__(self, model: torch.nn.Module, seconds: float):
        super().__init__()
        self.model, self.config, self.seconds = model, model.config, seconds

    def forward(self, *args, **kwargs):
        time.sleep(self.seconds)
        return self.model(*args, **kwargs)


@pytest.fixture(scope="module")
def unhurried_server(tmp_path_factory):
    from demo.controller import Controller
    from demo.listening import ListeningStore
    from demo.ui import build_app, launch
    from fgg.generate import Generator
    from fgg.model import PRESETS, UNet

    torch.manual_seed(0)
    slow = Controller({"paper": Generator(Unhurried(UNet(PRESETS["tiny"]), 0.1))})
    tmp = tmp_path_factory.mktemp("unhurried")
    app = build_app(slow, ListeningStore(f"sqlite:///{tmp / 'db.sqlite'}"))
    port = free_port()
    launch(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_a_long_piece_starts_playing_before_it_is_finished(browser, unhurried_server):
    """32 bars (11 windows): the player has audio while the piece is still being generated (no
    MIDI to download yet, no ✓), and the whole piece is there at the end."""
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(90_000)
    page.goto(unhurried_server)
    page.locator("#chords textarea").fill(" | ".join(["C", "G", "Am", "F"] * 8))
    page.locator("#generate").click()
    clicked = time.monotonic()
    state = """() => {
        const audio = document.querySelector('#audio-out audio');
        return {
            buffered: audio ? audio.buffered.length : 0,
            ready: audio ? audio.readyState : 0,
            midi: document.querySelectorAll('#midi-out a').length,
            status: document.querySelector('#generate-status').innerText,
        };
    }"""
    while (now := page.evaluate(state))["buffered"] == 0:
        assert "✓" not in now["status"], "the piece finished before any of its audio was playable"
        assert "Error" not in now["status"] and time.monotonic() - clicked < 60, now
        page.wait_for_timeout(50)
    first_sound = time.monotonic() - clicked
    assert now["midi"] == 0 and "✓" not in now["status"], now  # playing while the rest is generated
    page.get_by_text("notes in").first.wait_for()
    finished = time.monotonic() - clicked
    page.locator("#midi-out a").first.wait_for(state="attached")
    print(f"32 bars (a slowed tiny model): audio after {first_sound:.2f} s, finished after {finished:.2f} s")
    assert first_sound < finished
    # The whole piece is in the player: 32 bars at 90 BPM are 85 s, and the tail.
    page.wait_for_function("document.querySelector('#audio-out audio').duration > 85", timeout=30_000)
    page.close()


@pytest.mark.parametrize("width", [1400, 390])
def test_every_tab_fits_desktop_and_phone_widths(browser, server, width):  # noqa: F811
    """Screenshots of every tab (tests/artifacts/screen_<width>_<tab>.png) and of the
    participant page; at phone width every tab is reachable, nothing is wider than the screen
    and no dropdown's text runs under its arrow."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(server)
    page.locator("#generate").wait_for()
    # Every tab is on the screen, none folded into a "⋯" menu.
    assert page.locator("[aria-label='More tabs']:visible").count() == 0
    for tab in SCREENS:
        box = page.get_by_role("tab", name=tab, exact=True).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (tab, box)
    for tab, name in SCREENS.items():
        open_tab(page, tab)
        if tab == "Generate":
            open_more_options(page)  # its dropdowns too
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / f"screen_{width}_{name}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width + 1, (tab, overflow)
        for label, text_end, arrow in page.evaluate(DROPDOWN_TEXT_AND_ARROW):
            assert text_end <= arrow, (tab, label, text_end, arrow)
    for path, scale in (("listen", "creativity"), ("listen-strengths", "harmony"), ("admin", None)):
        page.goto(server + path)
        page.locator("#listening-start" if scale else "#admin-password").wait_for()
        page.screenshot(path=str(ARTIFACTS / f"screen_{width}_{path}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        if scale:  # the 1-5 scale on one line
            rows = page.evaluate(
                f"[...document.querySelectorAll('#listening-a-{scale} label')]"
                ".map(l => Math.round(l.getBoundingClientRect().top))"
            )
            assert len(rows) == 5 and len(set(rows)) == 1, rows
    page.close()


@pytest.fixture(scope="module")
def listening_server(controller, tmp_path_factory):  # noqa: F811
    """The app serving the shipped studies at once: fgg-vs-baselines at /listen (13 pairs; its
    files and keys full of system names) and strengths at /listen-strengths (multi-stimulus:
    five clips a page, one system a folder of MIDI made elsewhere)."""
    from demo.limits import Admission
    from demo.listening import ListeningStore
    from demo.ui import build_app, launch

    tmp = tmp_path_factory.mktemp("listening")
    store = ListeningStore(f"sqlite:///{tmp / 'answers.db'}")
    assert set(store.studies) == {"fgg-vs-baselines", "strengths"}
    os.environ["FGG_ADMIN_PASSWORD"] = "test-admin"  # read when the admin page is built
    generation = Admission("generation", total=16, per_client=2)
    app = build_app(controller, store, generation=generation)
    del os.environ["FGG_ADMIN_PASSWORD"]
    port = free_port()
    launch(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", store
    # The flood's admitted generations run on in server threads after their clients cancel;
    # an interpreter that exits under a running torch op aborts ("terminate called ...").
    deadline = time.monotonic() + 300
    while generation.held() and time.monotonic() < deadline:
        time.sleep(0.2)
    app.close()


LEAKS = ("fgg", "no_fgg", "last_step", "inpaint", "seg0", "seg1", "-vs-", ".mid", '"segment"')
STATIC = ("/assets/", "/static/", ".js", ".css", ".woff", ".svg", ".png", "favicon")  # Gradio's own bundle


def rate_screen(page, clips: str, criteria: tuple[str, ...], score: str, preference: str) -> None:
    """Set every rating of the screen shown (``clips``: its labels) and the preference."""
    for label in clips:
        for c in criteria:
            page.locator(f"#listening-{label.lower()}-{c}").get_by_text(score, exact=True).click()
    page.locator("#listening-preference").get_by_text(preference, exact=True).click()
    page.wait_for_function("!document.querySelector('#listening-submit').disabled")


def test_listening_test_as_a_participant_is_blind(browser, listening_server):
    """Sessions on both studies' participant pages: nothing the browser receives (the page, every
    response, every event payload, every audio URL) names a system, a prompt or a clip file;
    the ratings are unset on every new screen and submit waits for all of them; a reload keeps
    the consent and what was entered; a replayed submit is stored once."""
    url, store = listening_server
    received = []
    page = browser.new_page(viewport={"width": 1300, "height": 1400})
    page.set_default_timeout(60_000)

    def keep(response):
        kind = response.headers.get("content-type", "")
        body = ""
        if not kind.startswith("audio/"):
            try:
                body = response.text()
            except Exception:  # streamed (SSE) bodies may be gone already; their URLs still count
                body = ""
        received.append((response.url, body))

    page.on("response", keep)
    page.goto(url + "listen")
    submit = page.locator("#listening-submit")
    page.locator("#listening-start").click()  # no consent yet: a warning, nothing starts
    page.locator("#listening-notice").get_by_text("tick the consent box").wait_for()
    page.locator("#listening-consent input").check()
    page.locator("#listening-start").click()
    criteria = ("creativity", "harmony", "naturalness")
    for number in (1, 2, 3):
        page.get_by_text(f"Pair {number} of 13").first.wait_for()
        for side in ("a", "b"):
            page.locator(f"#listening-{side} audio").first.wait_for(state="attached")
        radios = page.locator("[id^=listening-] input[type=radio]")
        checked = [i for i in range(radios.count()) if radios.nth(i).is_checked()]
        assert radios.count() == 6 * 5 + 3 and not checked, (number, checked)
        assert submit.is_disabled()
        score = str(2 + number % 3)
        for c in criteria:
            page.locator(f"#listening-a-{c}").get_by_text(score, exact=True).click()
        if number == 2:  # a reload keeps the consent and what was entered on the pair
            page.wait_for_timeout(500)  # the last click's change has reached the browser's storage
            page.reload()
            page.wait_for_function("document.querySelector('#listening-consent input')?.checked === true")
            page.locator("#listening-start").click()
            page.get_by_text("Pair 2 of 13").first.wait_for()
            for c in criteria:
                page.wait_for_function(
                    f"document.querySelector('#listening-a-{c} input[value=\"{score}\"]')?.checked === true"
                )
        assert submit.is_disabled()  # B and the preference still unset
        rate_screen(page, "AB", criteria, score, "B")
        page.screenshot(path=str(ARTIFACTS / f"6_listening_pair{number}.png"), full_page=True)
        submit.click()
    page.get_by_text("Pair 4 of 13").first.wait_for()
    assert len({u for u, _ in received if ".wav" in u}) == 8  # every clip its own opaque URL
    received.append(("page", page.content()))

    page.goto(url + "listen-strengths")  # the other study: its own page, its own rater
    page.locator("#listening-consent input").check()
    page.locator("#listening-start").click()
    page.get_by_text("Page 1 of 6").first.wait_for()
    radios = page.locator("[id^=listening-] input[type=radio]")
    assert radios.count() == 6 * 2 * 5 + 7  # six clips, two criteria, a preference among them or none
    rate_screen(page, "ABCDEF", ("harmony", "naturalness"), "3", "C")
    page.screenshot(path=str(ARTIFACTS / "6_listening_page1.png"), full_page=True)
    submit.click()
    page.get_by_text("Page 2 of 6").first.wait_for()
    received.append(("page", page.content()))
    page.close()
    assert len(store.study("fgg-vs-baselines").frames()[1]) == 3
    pages = store.study("strengths").frames()[0]
    systems = {"fgg", "fgg_half", "no_fgg", "human", "hidden_reference", "anchor"}
    assert len(pages) == 6 * 2 and set(pages["system"]) == systems  # six clips, two criteria each
    assert any("Pair 2 of 13" in body for _, body in received)  # the event payloads are in the scan
    assert len({u for u, _ in received if ".wav" in u}) == 8 + 12
    for where, body in received:
        if any(part in where for part in STATIC):
            continue
        for leak in LEAKS:
            assert leak not in where and leak not in body, (leak, where, body[:300])


def test_a_generation_flood_does_not_lock_raters_out(browser, listening_server):
    """40 generations at once: the 38 beyond this visitor's share are refused, saying why,
    before any work is queued for them, and a rater still starts and submits meanwhile (the
    listening events do not go through the generation queue). How fast the refusals come is
    a benchmark's number, not a test's: a 2 s bound here failed on a slower CPU, on the code
    before issue 21 too (submitting 40 jobs from gradio_client alone took 1.2 s there)."""
    from gradio_client import Client

    url, store = listening_server
    client = Client(url, verbose=False)
    sent = time.perf_counter()
    flood = [client.submit(chords="C G | Am F", bars=32, steps=50, seed=k, api_name="/generate") for k in range(40)]
    while sum(job.done() for job in flood) < 38 and time.perf_counter() - sent < 60.0:
        time.sleep(0.05)
    refused = [job for job in flood if job.done() and job.exception() is not None]
    assert len(refused) == 38, len(refused)
    assert all("limit 2 per visitor" in str(job.exception()) for job in refused)
    answers = store.study("fgg-vs-baselines")
    before = len(answers.frames()[1])
    page = browser.new_page()
    page.set_default_timeout(30_000)
    began = time.perf_counter()
    page.goto(url + "listen")
    page.locator("#listening-consent input").check()
    page.locator("#listening-start").click()
    page.get_by_text("Pair 1 of 13").first.wait_for()
    rate_screen(page, "AB", ("creativity", "harmony", "naturalness"), "4", "same")
    page.locator("#listening-submit").click()
    page.get_by_text("Pair 2 of 13").first.wait_for()
    seconds = time.perf_counter() - began
    still_busy = sum(not job.done() for job in flood)
    page.close()
    for job in flood:
        job.cancel()
    assert len(answers.frames()[1]) == before + 1
    assert still_busy > 0, "the flood ended before the rater finished: the test proved nothing"
    assert seconds < 20


def test_admin_view_needs_the_password_and_shows_the_plots(browser, listening_server):
    url, store = listening_server
    study = store.study("fgg-vs-baselines")
    rater = study.new_rater()  # answers of its own: the test must not depend on the participant test running first
    while (trial := study.next_trial(rater)) is not None:
        good = trial.labels[trial.systems.index("fgg")]
        given = {c: [4, 3] if good == "A" else [3, 4] for c in ("creativity", "harmony", "naturalness")}
        study.answer(rater, study.item_token(rater, trial.item_id), given, good)
    page = browser.new_page(viewport={"width": 1300, "height": 2400})
    page.set_default_timeout(60_000)
    page.goto(url)
    assert page.get_by_role("tab", name=re.compile("admin|results", re.I)).count() == 0  # not on the public page
    page.goto(url + "admin")
    page.locator("#admin-password input").fill("guess")
    page.locator("#admin-show").click()
    page.get_by_text("wrong admin password").first.wait_for()
    time.sleep(1.2)  # one failure: a 1 s back-off
    page.locator("#admin-password input").fill("test-admin")
    page.locator("#admin-show").click()
    page.locator("#admin-summary").get_by_text("raters").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "7_listening_admin.png"), full_page=True)
    assert page.locator(".js-plotly-plot").count() >= 2
    progress = page.locator("#admin-progress").inner_text()
    assert "fgg-vs-baselines" in progress and "strengths" in progress  # every study's progress
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    for kind in ("csv", "json"):  # downloads named after what they hold, not file.txt
        name = f"listening-results-fgg-vs-baselines-{today}.{kind}"
        page.wait_for_function(
            f"[...document.querySelectorAll('#admin-export-{kind} a')].some(a => a.href.endsWith('/{name}'))"
        )
    page.close()
