"""The served OpenAPI schema fuzzed by schemathesis (bounded: no 500, every response as the schema says), and the
results page in a real headless Chromium (Debian's chromium and chromium-driver, installed by .ci/run): it
submits a small solve, waits for it and shows its ranked result, a fit plot and the 3D view. The screenshot is
kept in out/test-artifacts/ (or $SCATTERFIT_TEST_ARTIFACTS)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import TOKEN

ARTIFACTS = Path(os.environ.get("SCATTERFIT_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "out" /
                                "test-artifacts"))


def test_the_openapi_schema_fuzzed_gives_no_500_and_conforming_responses(shared_server):
    st = Path(sys.executable).with_name("st")
    done = subprocess.run([str(st), "run", f"{shared_server.url}/openapi.json", "-H", f"Authorization: Bearer {TOKEN}",
                           "--checks", "not_a_server_error,response_schema_conformance", "-n", "25", "--seed", "1",
                           "--request-timeout", "20"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout.split("SUMMARY")[-1]
    tested = [line for line in done.stdout.splitlines() if "Tested:" in line]
    assert tested and tested[0].split()[-1] == "10"  # every operation of the API
    leftovers = [p for p in (shared_server.data_dir / "jobs").iterdir() if p.name.startswith(".upload-")]
    assert leftovers == []


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1800"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_results_page_submits_a_solve_and_shows_its_ranked_result(server, copper_file):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        browser.get(server.url + "/")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "save-token").click()
        browser.find_element(By.ID, "files").send_keys(str(copper_file))
        browser.find_element(By.ID, "composition").send_keys("Cu")
        browser.find_element(By.ID, "label").send_keys("from the browser")
        browser.find_element(By.ID, "submit").click()
        # the table is redrawn every 2 s: a row found may be replaced before it is read (stale), so look again
        stale = (NoSuchElementException, StaleElementReferenceException)
        WebDriverWait(browser, 30, ignored_exceptions=stale).until(
            lambda b: "from the browser" in b.find_element(By.CSS_SELECTOR, "tr.job").text)
        WebDriverWait(browser, 240, ignored_exceptions=stale).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "tr.job td.state").text in ("done", "failed"))
        assert WebDriverWait(browser, 10, ignored_exceptions=stale).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "tr.job td.state").text) == "done"
        WebDriverWait(browser, 10, ignored_exceptions=stale).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "tr.job").click() is None)
        WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.ID, "report")))
        browser.switch_to.frame(browser.find_element(By.ID, "report"))
        WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.TAG_NAME, "table")))
        first = browser.find_elements(By.CSS_SELECTOR, "table tr")[1].text
        assert "fcc Cu" in first and "crystal" in first
        figure = browser.find_element(By.CSS_SELECTOR, "figure img")
        assert browser.execute_script("return arguments[0].naturalWidth", figure) > 300  # the fit plot loaded
        canvas = browser.find_element(By.CSS_SELECTOR, "canvas.sf-view")
        drawn = browser.execute_script(
            "const c=arguments[0],d=c.getContext('2d').getImageData(0,0,c.width,c.height).data;"
            "let n=0;for(let i=0;i<d.length;i+=4){if(d[i]<250||d[i+1]<250||d[i+2]<250)n++;}return n;", canvas)
        assert drawn > 1000  # the 3D view drew atoms
        browser.switch_to.default_content()
        browser.execute_script("document.getElementById('report').scrollIntoView()")
        time.sleep(0.5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "service_results_page.png"))
    finally:
        browser.quit()
