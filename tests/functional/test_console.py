"""``/console``: the browser console, over HTTP (its files, headers and validators) and in a real
headless Chromium (upload by file picker and by drop, the grid, details, delete, API keys, and text
from strangers shown as text)."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from pymager.config import hash_api_key
from pymager.web.console import CONTENT_SECURITY_POLICY, STATIC_DIRECTORY
from tests.conftest import service_missing, sqlite_url
from tests.functional import browser
from tests.functional.conftest import Server, assert_problem, start_server, stop_and_check_log

# Long enough for a cold AVIF thumbnail on a busy 2-core machine; each wait returns as soon as it holds.
WAIT = 20.0
API_KEY = "console-test-key-0123456789"
HOSTILE_NAME = "<img src=x onerror=alert(1)>.txt"


def _start(directory: Path, **extra: object) -> Server:
    return start_server(directory, sqlite_url(directory / "registry.sqlite3"), None, **extra)


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = _start(tmp_path_factory.mktemp("console"))
    yield running
    stop_and_check_log(running)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = _start(tmp_path_factory.mktemp("console-keys"), **{"auth.api_keys": hash_api_key(API_KEY)})
    yield running
    stop_and_check_log(running)


def picture(width: int = 640, height: int = 480) -> bytes:
    """A PNG with a gradient (something a thumbnail visibly shrinks)."""
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- over HTTP ---------------------------------------------------------------------------------


def test_console_page_is_served_with_a_strict_policy(console_server: Server) -> None:
    response = requests.get(console_server.url("/console"), timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["ETag"].startswith('"')
    assert "Last-Modified" in response.headers
    page = response.text
    # No inline code for the policy to refuse: scripts come from files, no style element or attribute,
    # no event handler attribute; and nothing from another origin.
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/console/console.js" defer>']
    assert "<style" not in page
    assert not re.search(r"\sstyle\s*=", page)
    assert not re.search(r"\son[a-z]+\s*=", page)
    assert not re.search(r"(?:src|href)\s*=\s*\"(?:https?:)?//", page)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("console.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
    ],
)
def test_console_files_are_served_with_their_types(
    console_server: Server, name: str, content_type: str
) -> None:
    response = requests.get(console_server.url(f"/console/{name}"), timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.content == (STATIC_DIRECTORY / name).read_bytes()


def test_console_files_answer_304_to_their_validators(console_server: Server) -> None:
    url = console_server.url("/console/console.js")
    first = requests.get(url, timeout=10)

    by_etag = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    by_date = requests.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]}, timeout=10)
    head = requests.head(url, timeout=10)

    assert (by_etag.status_code, by_etag.content) == (304, b"")
    assert by_date.status_code == 304
    assert by_etag.headers["ETag"] == first.headers["ETag"]
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == str(len(first.content))


@pytest.mark.parametrize(
    # Named as files under /console: a module of the package, one beside the console's, a traversal.
    "path",
    ["/console/missing.js", "/console/console.py", "/console/static", "/console/..%2F..%2Fconfig.py"],
)
def test_console_unknown_file_is_a_404_problem(console_server: Server, path: str) -> None:
    response = requests.get(console_server.url(path), timeout=10)

    assert_problem(response, 404, problem="no-such-resource")


def test_console_allows_only_get_and_head(console_server: Server) -> None:
    response = requests.post(console_server.url("/console"), data=b"x", timeout=10)

    assert_problem(response, 405, problem="method-not-allowed")
    assert response.headers["Allow"] == "GET, HEAD"


def test_console_off_is_a_404(tmp_path: Path) -> None:
    server = _start(tmp_path, console="off")
    try:
        page = requests.get(server.url("/console"), timeout=10)
        script = requests.get(server.url("/console/console.js"), timeout=10)
    finally:
        stop_and_check_log(server)

    assert_problem(page, 404, problem="no-such-resource")
    assert_problem(script, 404, problem="no-such-resource")


# --- in a real browser -------------------------------------------------------------------------


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chrome]:
    installation = browser.find_installation()
    if isinstance(installation, str):
        service_missing(installation)
    driver = browser.start_chromium(installation, tmp_path / "profile", tmp_path / "chromedriver.log")
    try:
        yield driver
    finally:
        driver.quit()


def waited(driver: Chrome, condition: Callable[[Chrome], Any], what: str) -> Any:
    """``condition``'s first truthy value, polled by WebDriverWait until ``WAIT`` passes."""
    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, f"waited {WAIT}s for {what}")


def tile_image(driver: Chrome, image_id: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#grid li[data-id="{image_id}"] img')


def loaded_width(driver: Chrome, image: WebElement) -> int:
    width: int = driver.execute_script("return arguments[0].complete ? arguments[0].naturalWidth : 0;", image)
    return width


def wait_for_thumbnail(driver: Chrome, image_id: str) -> WebElement:
    """The grid's thumbnail of ``image_id``, once the browser has decoded it."""

    def loaded(d: Chrome) -> WebElement | None:
        found = d.find_elements(By.CSS_SELECTOR, f'#grid li[data-id="{image_id}"] img')
        return found[0] if found and loaded_width(d, found[0]) > 0 else None

    image: WebElement = waited(driver, loaded, f"the thumbnail of {image_id}")
    return image


def wait_for_message(driver: Chrome, pattern: str) -> str:
    """The text of the first console message matching ``pattern``."""

    def matching(d: Chrome) -> str | None:
        for item in d.find_elements(By.CSS_SELECTOR, "#messages li"):
            if re.search(pattern, item.text):
                return str(item.text)
        return None

    text: str = waited(driver, matching, f"a message matching {pattern!r}")
    return text


def dialog_open(driver: Chrome, dialog_id: str) -> bool:
    is_open: bool = driver.execute_script(f"return document.getElementById('{dialog_id}').open;")
    return is_open


def drop_file(driver: Chrome, name: str, data: bytes, mime: str) -> None:
    """A real drop event on the drop zone, carrying the file in a DataTransfer (what a drag from the
    desktop delivers; Chrome cannot drag from outside the page)."""
    driver.execute_script(
        """
        const [name, encoded, mime] = arguments;
        const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: mime }));
        const zone = document.getElementById('drop-zone');
        for (const type of ['dragenter', 'dragover', 'drop']) {
          const event = { bubbles: true, cancelable: true, dataTransfer: transfer };
          zone.dispatchEvent(new DragEvent(type, event));
        }
        """,
        name,
        base64.b64encode(data).decode("ascii"),
        mime,
    )


def errors_except(entries: list[dict[str, Any]], expected: list[str]) -> list[dict[str, Any]]:
    """The console entries that are errors or warnings, but those that are the network failures the
    test caused on purpose (each ``expected`` entry: a regex of the URL and status). A policy
    violation, a script error, an unhandled rejection: all are left."""
    left = []
    for entry in entries:
        if entry["level"] not in ("SEVERE", "WARNING"):
            continue
        if entry.get("source") == "network" and any(re.search(p, entry["message"]) for p in expected):
            continue
        left.append(entry)
    return left


@pytest.mark.browser
def test_console_page_refuses_markup_and_inline_code(chromium: Chrome, console_server: Server) -> None:
    # What makes "no errors in the browser log" mean "no inline code, no markup from strings": the
    # policy is in force, and what it blocks is logged as an error.
    chromium.get(console_server.url("/console"))
    waited(chromium, lambda d: d.find_element(By.ID, "empty").is_displayed(), "the empty listing")

    assigned = chromium.execute_script(
        "try { document.body.innerHTML = '<b>x</b>'; return 'assigned'; } catch (e) { return e.name; }"
    )
    chromium.execute_script("document.getElementById('messages').setAttribute('style', 'color: red');")
    styled = chromium.execute_script("return getComputedStyle(document.getElementById('messages')).color;")
    entries = waited(
        chromium, lambda d: [e for e in browser.browser_log(d) if e["source"] == "security"], "a violation"
    )

    assert assigned == "TypeError"  # Trusted Types: a string is never parsed as HTML
    assert styled != "rgb(255, 0, 0)"
    assert all(entry["level"] == "SEVERE" for entry in entries), entries


@pytest.mark.browser
def test_console_uploads_shows_and_deletes_an_original(
    chromium: Chrome, console_server: Server, tmp_path: Path
) -> None:
    photo = tmp_path / "sunset photo.png"  # the id is sunset_photo
    photo.write_bytes(picture())
    hostile = tmp_path / HOSTILE_NAME
    hostile.write_bytes(b"<script>alert(1)</script> is no picture\n")
    refused = requests.post(
        console_server.url("/original/hostile_reference"),
        files={"file": (HOSTILE_NAME, hostile.read_bytes(), "text/plain")},
        timeout=10,
    )
    problem = assert_problem(refused, 400, problem="unsupported-image")

    chromium.get(console_server.url("/console"))
    waited(chromium, lambda d: d.find_element(By.ID, "empty").is_displayed(), "the empty listing")
    picker = chromium.find_element(By.ID, "file-input")
    picker.send_keys(str(photo))
    thumbnail = wait_for_thumbnail(chromium, "sunset_photo")
    drop_file(chromium, "dropped.png", picture(300, 200), "image/png")
    wait_for_thumbnail(chromium, "dropped")
    picker.send_keys(str(hostile))
    shown = wait_for_message(chromium, "not stored")

    # The thumbnail is the lazy, responsive fit thumbnail, shown at 200 CSS pixels.
    assert thumbnail.get_attribute("loading") == "lazy"
    srcset = thumbnail.get_attribute("srcset") or ""
    assert "/derived/sunset_photo-200x200-fit.auto 200w" in srcset
    assert "/derived/sunset_photo-400x400-fit.auto 400w" in srcset
    assert 0 < loaded_width(chromium, thumbnail) <= 400
    wait_for_message(chromium, r"^sunset photo\.png: stored as sunset_photo \(PNG 640×480\)$")
    # The file name and the server's problem, as text: no element was made of them.
    assert shown == f"{HOSTILE_NAME}: not stored: {problem['title']}: {problem['detail']}"
    assert chromium.find_elements(By.CSS_SELECTOR, "#messages *:not(li)") == []
    assert chromium.execute_script("return document.querySelectorAll('img[src=\"x\"]').length;") == 0

    chromium.find_element(By.CSS_SELECTOR, '#grid li[data-id="sunset_photo"] button').click()
    waited(chromium, lambda d: dialog_open(d, "detail-dialog"), "the detail view")
    facts = dict(
        zip(
            [term.text for term in chromium.find_elements(By.CSS_SELECTOR, "#detail-facts dt")],
            [value.text for value in chromium.find_elements(By.CSS_SELECTOR, "#detail-facts dd")],
            strict=True,
        )
    )
    derived = [cell.text for cell in chromium.find_elements(By.CSS_SELECTOR, "#detail-derived tbody td")]

    assert chromium.find_element(By.ID, "detail-title").text == "sunset_photo"
    assert facts["id"] == "sunset_photo"
    assert facts["format"] == "PNG"
    assert facts["size"] == "640×480"
    assert facts["bytes"] == str(photo.stat().st_size)
    assert facts["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert facts["alpha"] == "false"
    assert re.fullmatch(r"#[0-9a-f]{6}", facts["colour"]), facts["colour"]
    assert "/derived/sunset_photo-200x200-fit.avif" in derived  # the thumbnail Chromium asked for

    chromium.find_element(By.ID, "detail-delete").click()
    waited(chromium, lambda d: dialog_open(d, "confirm-dialog"), "the confirmation")
    assert "Delete sunset_photo" in chromium.find_element(By.ID, "confirm-text").text
    chromium.find_element(By.ID, "confirm-delete").click()
    waited(
        chromium,
        lambda d: not d.find_elements(By.CSS_SELECTOR, '#grid li[data-id="sunset_photo"]'),
        "the tile gone",
    )
    wait_for_message(chromium, "^deleted sunset_photo$")

    assert not dialog_open(chromium, "detail-dialog")
    assert requests.get(console_server.url("/original/sunset_photo"), timeout=10).status_code == 404
    assert requests.get(console_server.url("/original/dropped"), timeout=10).status_code == 200
    hostile_id = "_img_src_x_onerror_alert_1__"
    assert requests.get(console_server.url(f"/original/{hostile_id}"), timeout=10).status_code == 404
    entries = browser.browser_log(chromium)
    assert errors_except(entries, [rf"/original/{hostile_id} .*status of 400"]) == [], entries
    assert not any("Content Security Policy" in entry["message"] for entry in entries), entries


@pytest.mark.browser
def test_console_asks_for_the_key_before_listing(
    chromium: Chrome, keyed_server: Server, tmp_path: Path
) -> None:
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    stored = requests.post(
        keyed_server.url("/original/listed"),
        files={"file": ("a.png", picture(), "image/png")},
        headers=bearer,
        timeout=10,
    )
    assert stored.status_code == 201, stored.text
    photo = tmp_path / "later.png"
    photo.write_bytes(picture(320, 240))

    chromium.get(keyed_server.url("/console"))
    waited(chromium, lambda d: dialog_open(d, "key-dialog"), "the key dialog")
    reason = chromium.find_element(By.ID, "key-reason").text
    listed_before = chromium.find_elements(By.CSS_SELECTOR, "#grid li")
    chromium.find_element(By.ID, "key-input").send_keys("not-the-key")
    chromium.find_element(By.ID, "key-submit").click()
    waited(chromium, lambda d: "not valid" in d.find_element(By.ID, "key-reason").text, "the refusal")
    chromium.find_element(By.ID, "key-input").send_keys(API_KEY)
    chromium.find_element(By.ID, "key-submit").click()
    wait_for_thumbnail(chromium, "listed")
    chromium.find_element(By.ID, "file-input").send_keys(str(photo))
    wait_for_thumbnail(chromium, "later")

    assert "API key" in reason
    assert listed_before == []
    assert not dialog_open(chromium, "key-dialog")  # the upload used the tab's key without asking
    assert chromium.execute_script("return sessionStorage.getItem('pymager-api-key');") == API_KEY
    assert chromium.execute_script("return localStorage.length;") == 0
    assert requests.get(keyed_server.url("/original/later"), timeout=10).status_code == 200
    entries = browser.browser_log(chromium)
    assert errors_except(entries, [r"/original\?limit=\d+ .*status of 401"]) == [], entries
