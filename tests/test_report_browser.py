"""The report in a real browser (Debian's headless Chromium through chromedriver): it opens from disk with no
network, every image loads, nothing is blocked or logged as an error, the filters and sorting work, and the
hostile prompt stays text."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from test_report import EVIL, N, lab_run
from ttscale.lab.evaluator import LabEvaluator
from ttscale.report.build import build_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]
# Resolves once every <img> has loaded or failed, scrolling to each in turn: gallery images load lazily.
WAIT_FOR_IMAGES = """
const done = arguments[arguments.length - 1];
(async () => {
  const images = Array.from(document.images);
  for (const img of images) {
    img.scrollIntoView();
    if (!img.complete) await new Promise((ok) => { img.onload = ok; img.onerror = ok; });
  }
  window.scrollTo(0, 0);
  done(images.map((img) => [img.getAttribute("src"), img.naturalWidth]));
})();
"""

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="Debian's chromium and chromium-driver are missing (`make test` installs them)",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shown(driver: webdriver.Chrome, selector: str) -> list[WebElement]:
    return [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]


def test_report_in_headless_chromium(tmp_path: Path, tiny_models: dict[str, Path], browser: webdriver.Chrome) -> None:
    run = tmp_path / "run"
    prompts = lab_run(run, tiny_models)
    index, page = build_report([run], tmp_path / "report", judge=LabEvaluator())
    browser.get(index.as_uri())
    browser.find_element(By.LINK_TEXT, "run").click()  # the index links to the run's page
    assert browser.current_url == page.as_uri()

    images = browser.execute_async_script(WAIT_FOR_IMAGES)
    assert len(images) == N * len(prompts) + 3  # every candidate, plus three figures
    assert [src for src, width in images if width == 0] == []
    browser.execute_script("document.getElementById('controls').scrollIntoView()")
    screenshot = tmp_path / "report.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.read_bytes()[:4] == b"\x89PNG"
    print(f"report screenshot: {screenshot}")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # nothing blocked by the page's CSP, no script error, no missing file

    assert len(_shown(browser, "section.prompt")) == len(prompts)
    Select(browser.find_element(By.ID, "f-task")).select_by_value("counting")
    sections = _shown(browser, "section.prompt")
    assert [s.get_attribute("data-task") for s in sections] == ["counting"]
    assert len(_shown(browser, ".card")) == N
    browser.find_element(By.ID, "f-kept").click()
    cards = _shown(browser, ".card")
    assert len(cards) == 1 and "kept" in (cards[0].get_attribute("class") or "")
    assert browser.find_element(By.ID, "shown").text == "1 prompts · 1 candidates shown"

    Select(browser.find_element(By.ID, "f-task")).select_by_value("")
    assert len(_shown(browser, ".card")) == len(prompts)  # kept only, every task
    browser.find_element(By.ID, "f-kept").click()
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("wrong")
    wrong = _shown(browser, ".card")
    assert all(c.get_attribute("data-verdict") == "wrong" for c in wrong)
    assert len(wrong) == len(browser.find_elements(By.CSS_SELECTOR, '.card[data-verdict="wrong"]'))
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("")

    Select(browser.find_element(By.ID, "s-prompts")).select_by_value("best-desc")
    best = [float(s.get_attribute("data-best") or "nan") for s in _shown(browser, "section.prompt")]
    assert best == sorted(best, reverse=True)
    Select(browser.find_element(By.ID, "s-cards")).select_by_value("index")
    first = _shown(browser, "section.prompt")[0]
    order = [int(c.get_attribute("data-index") or -1) for c in first.find_elements(By.CSS_SELECTOR, ".card")]
    assert order == list(range(N))

    browser.find_element(By.ID, "f-text").send_keys("<script>")
    sections = _shown(browser, "section.prompt")
    assert len(sections) == 1
    assert sections[0].find_element(By.CSS_SELECTOR, "q.prompt-text").text == EVIL
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018  (the hostile prompt never ran)
    # and had one slipped through, the page's CSP would refuse any script but its own
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s);"
    )
    assert browser.execute_script("return window.injected === undefined")
