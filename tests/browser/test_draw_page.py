"""The public draw page in a real browser: Debian's headless Chromium, driven by Selenium.

The service runs on a real HTTP server (werkzeug, in a thread of this process, so the mocked
siblings, Telegram and drand relay of ``peers`` answer it); the draw is made through the API over
HTTP. The page must say VERIFIED for the real draw and NOT VERIFIED, naming the broken rule, for a
forged record served in its place; "Was I counted?" must answer for an entrant and a stranger;
at 360 pixels wide nothing may overflow; and the browser's verifier must give Python's answer on
every vector of tests/vectors/draw-vectors.json. Screenshots of the verified and the refused page
go to docs/screenshots/.

Chromium and chromedriver come from Debian (``apt-get install chromium chromium-driver``; .ci/run
installs them); a machine without them skips these tests, except in strict mode
(TEST_REQUIRE_BACKENDS=1), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import GIVEAWAY, STRICT
from tests.factories import add_entries
from tests.utils.chains import rehash

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "docs" / "screenshots"
VECTORS = ROOT / "tests" / "vectors"
USERS = [1_000_000_000 + 7 * i for i in range(1, 61)]
PHONE = {"width": 360, "height": 780, "deviceScaleFactor": 2, "mobile": True}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for the module, with a fresh profile."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        message = f"Debian's chromium and chromium-driver are needed: {', '.join(missing)} missing"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="telegive-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download anything
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class LiveServer:
    """The application on a free loopback port; ``forged`` paths answer a body of the test's."""

    def __init__(self, app) -> None:
        self.forged: dict[str, bytes] = {}
        self.server = make_server("127.0.0.1", 0, self._serve, threaded=True)
        self.app = app
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _serve(self, environ: dict, start_response: Callable) -> object:
        path = environ.get("PATH_INFO", "")
        body = self.forged.get(path)
        if body is None:
            return self.app(environ, start_response)
        kind = "application/json" if path.endswith(".json") else "text/html; charset=utf-8"
        start_response("200 OK", [("Content-Type", kind)])
        return [body]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """An API call over HTTP, with the Giveaway service's token."""
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", **GIVEAWAY},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return json.loads(answer.read())


@pytest.fixture
def live(app, peers) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.thread.join(timeout=10)


def make_draw(app, live: LiveServer, peers) -> list[dict]:
    """Entries, then a draw of three, a replacement and an added winner, through the API."""
    peers.standard()
    add_entries(app, 1, USERS)
    first = live.call("POST", "/api/participants/1/select-winners", {"winner_count": 3})
    replaced = first["winners"][0]["user_id"]
    for key, body in (("r1", {"replace_user_id": replaced}), ("r2", {"add_count": 1})):
        reason = "не ответил: «unreachable»"
        live.call(
            "POST", "/api/participants/1/reroll", {"reason": reason, "idempotency_key": key, **body}
        )
    return live.call("GET", "/api/participants/1/draw")["records"]


def open_page(browser, url: str) -> str:
    """Open the page as a 360-pixel phone and wait for its verdict; returns it."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.get(url)
    WebDriverWait(browser, 60).until(
        lambda driver: "pending" not in driver.find_element("id", "verdict").get_attribute("class")
    )
    return browser.find_element("id", "verdict").text


def text_of(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


def statuses(browser) -> dict[str, str]:
    """Each fact's mark, by its data-check."""
    return browser.execute_script(
        "const out = {}; for (const el of document.querySelectorAll('[data-check]'))"
        " out[el.dataset.check] = el.className + ' ' + el.textContent; return out;"
    )


def overflow(browser) -> int:
    return browser.execute_script("return document.documentElement.scrollWidth")


def screenshot(browser, name: str) -> Path:
    """The whole page at phone width, as a PNG under docs/screenshots/."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    whole = {**PHONE, "height": height, "deviceScaleFactor": 1}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", whole)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    browser.save_screenshot(str(path))
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    return path


def console_errors(browser) -> list[str]:
    """Script errors and policy violations (a stranger's 404 and the favicon are expected)."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE"
        and "favicon.ico" not in entry["message"]
        and not ("/proof/" in entry["message"] and "status of 404" in entry["message"])
    ]


def check_counted(browser, user_id: int) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    field = browser.find_element("id", "user-id")
    field.clear()
    field.send_keys(str(user_id))
    browser.find_element("css selector", "#counted-form button").click()
    WebDriverWait(browser, 30).until(
        lambda driver: text_of(driver, "counted-result") not in ("", "Checking…")
    )
    return text_of(browser, "counted-result")


def test_a_real_draw_is_verified_in_the_browser_and_an_entrant_finds_they_were_counted(
    app, live, peers, browser
):
    records = make_draw(app, live, peers)
    browser.get_log("browser")  # start from an empty console
    verdict = open_page(browser, f"{live.url}/draws/1")
    assert verdict == "VERIFIED", text_of(browser, "reason")
    assert "3 record(s)" in text_of(browser, "reason")
    assert "BLS signature was not checked in this browser" in text_of(browser, "reason")
    marks = statuses(browser)
    assert set(marks) >= {"1:seed", "1:beacon", "1:list", "*:winners", "2:chain", "3:winners"}
    assert all(mark.startswith("st ok ✓") for mark in marks.values()), marks
    assert overflow(browser) <= 360
    assert "counted in this draw" in check_counted(browser, USERS[17])
    stranger = check_counted(browser, USERS[-1] + 1)
    assert stranger.startswith(f"not found: {USERS[-1] + 1} is not among")
    answer = check_counted(browser, USERS[0])
    assert answer.startswith(f"counted in this draw: {USERS[0]} is entrant 1 of {len(USERS)}")
    assert overflow(browser) <= 360
    assert console_errors(browser) == []
    screenshot(browser, "draw-verified.png")
    winner = records[0]["winners"][1]["user_id"]
    assert str(winner) in browser.find_element("tag name", "main").text


def test_a_forged_record_is_refused_with_the_rule_it_breaks(app, live, peers, browser):
    records = make_draw(app, live, peers)
    document = live.call("GET", "/api/participants/1/draw")
    # A forger's record: another entrant put in the first winner's place, the chain re-hashed
    # with the project's own digest so that every hash still links.
    forged = [dict(record) for record in records]
    winners = [dict(winner) for winner in forged[0]["winners"]]
    intruder = next(user for user in USERS if user not in {w["user_id"] for w in winners})
    winners[0]["user_id"] = intruder
    forged[0]["winners"] = winners
    rehash(forged)
    live.forged["/draws/1/record.json"] = json.dumps(
        {**document, "records": forged, "draw": forged[-1]}
    ).encode()
    verdict = open_page(browser, f"{live.url}/draws/1")
    assert verdict == "NOT VERIFIED"
    reason = text_of(browser, "reason")
    assert reason.startswith(
        f"record 1: the proof of winner {intruder} at leaf {winners[0]['leaf_index']} does not"
        " lead to entrant_root"
    ), reason
    marks = statuses(browser)
    assert marks["1:list"].startswith("st bad ✗ the proof of winner")
    assert marks["1:seed"].startswith("st ok")
    assert overflow(browser) <= 360
    screenshot(browser, "draw-refused.png")


def test_a_page_that_states_another_winner_than_its_record_is_refused(app, live, peers, browser):
    records = make_draw(app, live, peers)
    winner = records[0]["winners"][0]["user_id"]
    with app.test_client() as client:
        html = client.get("/draws/1").get_data(as_text=True)
    live.forged["/draws/1"] = html.replace(f"#1 {winner}<", "#1 1000000002<").encode()
    assert open_page(browser, f"{live.url}/draws/1") == "NOT VERIFIED"
    reason = text_of(browser, "reason")
    assert reason == "the page states facts other than the record's: winners of 1", reason


def test_before_the_draw_the_page_says_not_drawn_yet(app, live, peers, browser):
    peers.standard()
    add_entries(app, 2, USERS[:5])
    assert open_page(browser, f"{live.url}/draws/2") == "Not drawn yet"
    assert "the draw will reveal the seed" in text_of(browser, "reason")
    assert check_counted(browser, USERS[0]).startswith("Entries are not closed yet")
    assert overflow(browser) <= 360


def test_the_browser_gives_pythons_answer_on_every_vector(app, live, browser):
    """tests/vectors/draw-vectors.json through web/static/telegive-draw.js in Chromium."""
    browser.get(f"{live.url}/draws/404404")  # a page of the origin (a secure context)
    runner = (VECTORS / "run-vectors.js").read_text()
    library = (ROOT / "web" / "static" / "telegive-draw.js").read_text()
    result = json.loads(
        browser.execute_async_script(
            library
            + "\n"
            + runner
            + "\nconst done = arguments[arguments.length - 1];"
            + "runVectors(TelegiveDraw, arguments[0]).then("
            + "r => done(JSON.stringify(r)), e => done(JSON.stringify({error: String(e)})));",
            (VECTORS / "draw-vectors.json").read_text(),
        )
    )
    assert "error" not in result, result
    assert result["failures"] == []
    assert result["checked"] >= 100
