"""The web page (python -m caption_generator demo) as people use it: in a real browser (Debian's headless
Chromium, driven by Selenium), and by 20 clients at once through Gradio's client. One server for the module:
the shipped model with the ImageNet weights, so that its captions can be compared with the command line's.

The browser test saves a screenshot of the page to $DEMO_SCREENSHOT if set (docs/demo.png is made so), else
to a temporary file."""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from conftest import FLICKR, ROOT, TINY

EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))
UPLOADED, CLICKED = EXAMPLES[2], EXAMPLES[0]  # a dog in the grass; a boy jumping into a pool
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "GRADIO_ANALYTICS_ENABLED": "False"}
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT = 300  # seconds for a caption on a busy machine


def flower() -> Path:
    """scikit-learn's sample photo of a dahlia: unlike the training photos, so its caption is flagged."""
    import sklearn
    return Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg"


def test_without_gradio_the_demo_says_how_to_install_it():
    hidden = ("import sys; sys.modules['gradio'] = None; "  # as if it were not installed
              "from caption_generator.__main__ import main; sys.exit(main(['demo']))")
    result = subprocess.run([sys.executable, "-c", hidden], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and result.stderr.strip() == \
        "error: the demo needs Gradio: pip install -r requirements-demo.txt", result.stderr
    assert "gradio" in (ROOT / "requirements-demo.txt").read_text()


def test_a_port_in_use_is_one_error_line(tiny_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        model = ["--model", str(tiny_model / "model.keras"), "--tokenizer", str(tiny_model / "tokenizer.p"), *TINY]
        result = subprocess.run([sys.executable, "-m", "caption_generator", "demo", "--port", str(port), *model],
                                cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip() == f"error: cannot serve on 127.0.0.1:{port}: the port is taken or the address " \
        "is not this machine's (give another --port or --host)"


@dataclass
class Server:
    url: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    """`demo` as a user starts it, on 127.0.0.1, with the fixture photos as the collection; its address."""
    if not os.environ.get("XCEPTION_WEIGHTS"):
        pytest.skip("needs the ImageNet weights ($XCEPTION_WEIGHTS)")
    folder = tmp_path_factory.mktemp("demo")
    log = folder / "server.log"
    command = [sys.executable, "-m", "caption_generator", "demo", "--port", str(free_port()),
               "--data-root", str(FLICKR), "--index", str(folder / "caption_index.p")]
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env={**ENV, "GRADIO_TEMP_DIR": str(folder / "uploads")},
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line, deadline = "", time.monotonic() + WAIT
        while not line.startswith("open http") and process.poll() is None and time.monotonic() < deadline:
            if select.select([process.stdout], [], [], 1)[0]:
                line = process.stdout.readline()
        assert line.startswith("open http://127.0.0.1:"), log.read_text()[-3000:]
        yield Server(line.split()[1], process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def cli_captions(*photos: Path) -> list[dict]:
    """What `caption --json` says about the photos, with the page's model and decoding (the defaults of both)."""
    result = subprocess.run([sys.executable, "-m", "caption_generator", "caption", *(f"-i{p}" for p in photos),
                             "--json"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Debian's chromedriver (Selenium's own driver download is never used)."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Chromium and its driver (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        yield driver
        driver.quit()


def texts(driver, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def shows(driver, selector: str, expected: list[str]) -> bool:
    """Whether the texts of the page's elements matching `selector` come to be `expected` (within WAIT seconds)."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:  # an element may go while its text is read: the page re-renders the results
        WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda d: texts(d, selector) == expected)
    except TimeoutException:
        return False
    return True


def upload(driver, *files: Path) -> None:
    """Drop files on the page's photo area (they are added to those already there)."""
    from selenium.webdriver.common.by import By
    driver.find_element(By.CSS_SELECTOR, "#photos input[type=file]").send_keys("\n".join(map(str, files)))


def save_screenshot(driver, path: Path) -> None:
    """The whole page, however long."""
    height = "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight"
    driver.set_window_size(1400, driver.execute_script(height))
    driver.save_screenshot(str(path))


def test_the_page_captions_photos_as_the_command_line_does(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    expected = {Path(c["image"]).name: c for c in cli_captions(UPLOADED, CLICKED, flower())}
    browser.get(server.url)  # Gradio builds the page in the browser, after the document has loaded
    assert shows(browser, "h1", ["Image caption generator"]) and browser.title == "Image caption generator"
    assert "Drop photos, or click an example" in browser.find_element(By.TAG_NAME, "body").text

    upload(browser, UPLOADED)
    assert shows(browser, ".photo-caption", [expected[UPLOADED.name]["caption"]]), texts(browser, ".photo-caption")
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: milk, eggs\n")
    upload(browser, notes)
    assert shows(browser, ".error", ["notes.txt: not a readable image (cannot identify image file)"]), \
        texts(browser, ".error")
    assert texts(browser, ".photo-caption") == [expected[UPLOADED.name]["caption"]]  # the photo is still captioned

    browser.find_elements(By.CSS_SELECTOR, "#examples button.thumbnail-item")[EXAMPLES.index(CLICKED)].click()
    assert shows(browser, ".photo-caption", [expected[CLICKED.name]["caption"]]), texts(browser, ".photo-caption")
    assert texts(browser, ".error") == []  # the example took the place of the files
    upload(browser, flower())
    both = [expected[CLICKED.name]["caption"], expected["flower.jpg"]["caption"]]
    assert shows(browser, ".photo-caption", both), texts(browser, ".photo-caption")
    flagged = expected["flower.jpg"]
    assert flagged["warning"] and texts(browser, ".warning") == ["⚠ " + flagged["warning"]]
    assert f"confidence {flagged['confidence']:.2f} · familiarity {flagged['familiarity']:.2f}" in \
        texts(browser, ".assessment")[1]

    galleries = browser.find_elements(By.CSS_SELECTOR, ".similar")
    assert len(galleries) == 2
    for gallery in galleries:
        assert len(gallery.find_elements(By.CSS_SELECTOR, "img")) == 6
        labels = [e.text for e in gallery.find_elements(By.CSS_SELECTOR, ".caption-label")]
        assert len(labels) == 6 and all(re.fullmatch(r"[01]\.\d\d · [a-z].+", t) for t in labels), labels
        assert "closest below it" in gallery.text or "similar photos" in gallery.text

    screenshot = Path(os.environ.get("DEMO_SCREENSHOT") or tmp_path / "demo.png")
    save_screenshot(browser, screenshot)
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.width == 1400 and image.height > 1000


def test_twenty_concurrent_requests_all_complete(server, capsys):
    import psutil
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False, analytics_enabled=False, download_files=False)
    process = psutil.Process(server.process.pid)
    first = client.predict([handle_file(UPLOADED)], 5, api_name="/caption")  # the model is warm from here on
    before = process.memory_info().rss
    jobs = [client.submit([handle_file(UPLOADED)], 5, api_name="/caption") for _ in range(20)]
    results = [job.result(timeout=WAIT * 4) for job in jobs]
    after = process.memory_info().rss
    captions = [r[0]["caption"] for r in [first, *results]]
    assert captions == [first[0]["caption"]] * 21 and captions[0], results
    with capsys.disabled():
        print(f"\ndemo server RSS: {before / 2**20:.0f} MB after one request, {after / 2**20:.0f} MB after 20 "
              f"concurrent ones")
