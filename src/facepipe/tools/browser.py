"""The web dashboard as a person meets it, for the tests and the benchmark: `facepipe serve` started
as its own process, and a headless Chromium driven by selenium through the system's chromedriver
(Debian: apt-get install chromium chromium-driver). Selenium is told never to download a browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = "needs Chromium and its driver: apt-get install chromium chromium-driver (.ci/run installs them)"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium(width: int = 1440, height: int = 900):
    """A fresh headless Chromium (its own profile folder), as a selenium WebDriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):
        raise RuntimeError(MISSING)
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--window-size={width},{height}",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='facepipe-chromium-')}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def start_server(folder: Path, config: Path, *options: str, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """`facepipe serve --config CONFIG --port 0` run in `folder` (its output in folder/serve.log);
    returns the process and the address it printed once it listens."""
    log_path = folder / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "facepipe.tools.cli", "serve", "--config", str(config.resolve()),
                                 "--port", "0", *options], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"http://127\.0\.0\.1:\d+/", log_path.read_text())
        if found:
            return proc, found[0]
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"facepipe serve did not start:\n{log_path.read_text()[-2000:]}")


def click_all(url: str, paths: list[str], timeout: float = 60) -> list[tuple[int, dict]]:
    """POST every path of `paths` to the server at `url` at once, each from its own thread, as the
    page's buttons do (with the page's Origin): (HTTP status, JSON answer) of each, in order."""
    import json
    import threading
    import urllib.error
    import urllib.request

    answers: list[tuple[int, dict] | None] = [None] * len(paths)
    go = threading.Event()

    def post(i: int, path: str) -> None:
        request = urllib.request.Request(url.rstrip("/") + path, method="POST", headers={"Origin": url.rstrip("/")})
        go.wait()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answers[i] = (response.status, json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as err:
            answers[i] = (err.code, json.loads(err.read() or b"{}"))

    threads = [threading.Thread(target=post, args=(i, p), daemon=True) for i, p in enumerate(paths)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(timeout + 5)
    return [a if a is not None else (0, {"error": "no answer"}) for a in answers]
