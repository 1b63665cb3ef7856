"""GraphiQL at `/` in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium): the page loads only the assets cxlake serves itself (crates/server/src/graphiql/), opens with
the README's first query from `?query=`, runs it with the execute button and shows rows with no
errors. Every non-loopback request is blocked and any resource off 127.0.0.1 fails the test.
Leaves a screenshot in $CXLAKE_ARTIFACTS/graphiql.png (default target/artifacts/)."""
import json
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import ROOT, start_server

CHROMIUM = Path(os.environ.get("CXLAKE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CXLAKE_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(os.environ.get("CXLAKE_ARTIFACTS", ROOT / "target" / "artifacts"))
TIMEOUT = 60


def readme_query():
    """The first ```graphql block of README.md: the test follows the README's tour."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^```graphql[ \t]*\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md has no ```graphql block"
    return m.group(1).strip()


def editor_value(driver, selector):
    """The whole text of the CodeMirror 5 editor under `selector` (CodeMirror renders only the
    visible lines, so the DOM text is not enough), or None while it is not there."""
    return driver.execute_script(
        "const el = document.querySelector(arguments[0] + ' .CodeMirror');"
        "return el && el.CodeMirror ? el.CodeMirror.getValue() : null;", selector)


def wait_for(what, fn, timeout=None):
    timeout = timeout or TIMEOUT
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def chromium(user_data_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={user_data_dir}",
                # Nothing leaves the machine: every non-loopback request goes to a proxy on the
                # discard port, where nothing listens (loopback always bypasses the proxy), and no
                # host name but loopback resolves.
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1;localhost;[::1]",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # Selenium Manager must not look for drivers or browsers online: both are given.
    os.environ.setdefault("SE_OFFLINE", "true")
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)


def requested_urls(driver):
    """Every URL the browser asked for (the DevTools performance log) and every resource the
    page loaded (the Resource Timing API)."""
    urls = set()
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.add(msg["params"]["request"]["url"])
    urls.update(driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"))
    return urls


def off_host_urls(url, urls):
    """The URLs not on the server's host and port (the log also has Chromium's own chrome://
    pages, such as the new tab before the first load)."""
    host = urllib.parse.urlsplit(url).netloc
    return sorted(u for u in urls if not u.startswith(("data:", "blob:", "chrome:", "about:"))
                  and urllib.parse.urlsplit(u).netloc != host)


def check_graphiql(url, query, screenshot):
    """Opens GraphiQL at `url` with `query`, runs it, checks the result and saves a screenshot.
    Returns the parsed result."""
    with tempfile.TemporaryDirectory(prefix="cxlake-chromium-") as profile:
        driver = chromium(profile)
        try:
            driver.set_page_load_timeout(TIMEOUT)
            driver.get(f"{url}/?query={urllib.parse.quote(query)}")
            try:
                wait_for("the GraphiQL editor", lambda: driver.execute_script(
                    "return !!document.querySelector('.graphiql-container .graphiql-query-editor .CodeMirror')"))
            except AssertionError as e:
                raise AssertionError(f"{e}; the page asked for {sorted(off_host_urls(url, requested_urls(driver)))} "
                                     f"off its host; console: {driver.get_log('browser')}") from None
            shown = wait_for("the query in the editor", lambda: editor_value(driver, ".graphiql-query-editor"))
            assert shown.strip() == query, f"the editor shows another query:\n{shown}"

            driver.find_element("css selector", ".graphiql-execute-button").click()

            def result_text():
                text = editor_value(driver, ".result-window")
                return text if text and '"agreeShare"' in text and re.search(r"\d", text) else None
            text = wait_for("the result with agreeShare", result_text)
            result = json.loads(text)
            time.sleep(0.3)  # let the result pane paint before the screenshot
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(screenshot))

            assert "errors" not in result, f"GraphiQL shows errors: {result['errors']}"
            rows = result["data"]["scores"]
            assert rows, "no rows"
            assert {r["agency"] for r in rows} <= {"VA", "SSA"}
            assert any(isinstance(r["agreeShare"], (int, float)) for r in rows), rows[:3]

            title = driver.title
            urls = requested_urls(driver)
            severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            driver.quit()
    assert title == "cxlake"
    off_host = off_host_urls(url, urls)
    assert not off_host, f"GraphiQL asked for resources off {url}: {off_host}"
    local = {urllib.parse.urlsplit(u).path for u in urls}
    for asset in ["react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphiql.min.css"]:
        assert f"/graphiql/{asset}" in local, f"/graphiql/{asset} was not loaded: {sorted(local)}"
    assert not severe, f"errors in the browser console: {severe}"
    return result


def test_graphiql_runs_readme_query():
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        missing = CHROMIUM if not CHROMIUM.exists() else CHROMEDRIVER
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is missing: CI must run the browser test (apt-get install chromium chromium-driver)")
        pytest.skip(f"{missing} is missing (apt-get install chromium chromium-driver)")
    proc, url = start_server("--lake", ROOT / "data" / "sample")
    try:
        check_graphiql(url, readme_query(), ARTIFACTS / "graphiql.png")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
