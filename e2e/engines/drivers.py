"""Firefox and WebKit behind one small interface, so the journey tests read the same in both engines.

- Firefox: Debian's ``firefox-esr``, driven by ``puppeteer-core`` over WebDriver BiDi from ``firefox.mjs`` (Node),
  which this module steers with one JSON request per line.
- WebKit: WebKitGTK through ``WebKitWebDriver`` (Selenium), with the test browser ``webkit_browser.py`` (persistent
  website data, the storage features on) on a private Xvfb display.

Both launch on a persistent profile and keep one blank tab open, so closing every tab of the app leaves the browser
running (the SharedWorker ends with the app's last page) and relaunching keeps OPFS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..ui import RECORD_LABELS

HERE = Path(__file__).resolve().parent
FIREFOX = os.environ.get("FIREFOX", "/usr/bin/firefox-esr")
WEBKIT_DRIVER = os.environ.get("WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver")
WEBKIT_BROWSER = HERE / "webkit_browser.py"
WEBKIT_APP_NAME = "smartcat-test-browser"  # webkit_browser.APP_NAME: WebKitWebDriver matches browserName to it



class EnginePage(Protocol):
    """One tab of the app."""

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        """Run the JavaScript function ``fn`` (source text) with ``arg``; its (awaited) result."""

    def set_input_files(self, selector: str, path: Path) -> None: ...

    def click(self, selector: str) -> None: ...

    def close(self) -> None: ...


class EngineBrowser(Protocol):
    name: str
    version: str

    def open(self, url: str) -> EnginePage: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------------- Firefox


class _Node:
    """The ``firefox.mjs`` process: requests and answers, one JSON object per line."""

    def __init__(self, env: dict[str, str]) -> None:
        if not (HERE / "node_modules" / "puppeteer-core").is_dir():
            raise RuntimeError("e2e/engines/node_modules is missing: `make engines` runs npm ci there")
        self._proc = subprocess.Popen(
            ["node", str(HERE / "firefox.mjs")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self._next = 0

    def call(self, verb: str, **args: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._next += 1
        self._proc.stdin.write(json.dumps({"id": self._next, "verb": verb, **args}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Firefox driver exited (code {self._proc.wait()}) during {verb}")
        answer = json.loads(line)
        assert answer["id"] == self._next
        if "error" in answer:
            raise RuntimeError(f"Firefox {verb}: {answer['error']}")
        return answer["value"]

    def stop(self) -> None:
        if self._proc.poll() is None:
            try:
                self.call("quit")
            finally:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()


class FirefoxPage:
    def __init__(self, node: _Node, page_id: int) -> None:
        self._node, self._id = node, page_id

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        return self._node.call("evaluate", page=self._id, fn=fn, arg=arg)

    def set_input_files(self, selector: str, path: Path) -> None:
        self._node.call("upload", page=self._id, selector=selector, paths=[str(path)])

    def click(self, selector: str) -> None:
        self._node.call("click", page=self._id, selector=selector)

    def close(self) -> None:
        self._node.call("close_page", page=self._id)


class Firefox:
    name = "firefox"

    def __init__(self, profile: Path, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        profile.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
               "MOZ_CRASHREPORTER_DISABLE": "1"}
        self._node = _Node(env)
        try:
            launched = self._node.call("launch", executable=FIREFOX, userDataDir=str(profile), script=RECORD_LABELS)
        except BaseException:
            self._node.stop()
            raise
        self.version = str(launched["version"])

    def open(self, url: str) -> EnginePage:
        return FirefoxPage(self._node, int(self._node.call("open", url=url)))

    def close(self) -> None:
        self._node.stop()


# ---------------------------------------------------------------------------------------------------- WebKit


@contextmanager
def xvfb() -> Iterator[str]:
    """A private X display (Xvfb picks a free number and writes it to us), for the GTK test browser."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-nolisten", "tcp", "-screen", "0", "1280x1024x24"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            raise RuntimeError(f"Xvfb did not start (exit code {proc.poll()})")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class WebKitPage:
    def __init__(self, browser: WebKit, handle: str) -> None:
        self._browser, self._handle = browser, handle

    @property
    def _driver(self) -> Any:
        self._browser.driver.switch_to.window(self._handle)
        return self._browser.driver

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        answer = self._driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve(({fn})(arguments[0])).then((value) => done({{value}}),"
            " (error) => done({error: `${error}\n${error && error.stack || ''}`}));",
            arg,
        )
        if "error" in answer:
            raise RuntimeError(f"WebKit evaluate: {answer['error']}")
        return answer.get("value")

    def set_input_files(self, selector: str, path: Path) -> None:
        """``selector`` may cross shadow roots with ``>>>`` (as puppeteer's does): WebDriver's CSS stops at them."""
        from selenium.webdriver.common.by import By

        host, *inside = selector.split(" >>> ")
        found = self._driver.find_element(By.CSS_SELECTOR, host)
        for part in inside:
            found = found.shadow_root.find_element(By.CSS_SELECTOR, part)
        found.send_keys(str(path))

    def click(self, selector: str) -> None:
        from selenium.webdriver.common.by import By

        self._driver.find_element(By.CSS_SELECTOR, selector).click()

    def close(self) -> None:
        self._driver.close()
        self._browser.driver.switch_to.window(self._browser.blank)


class WebKit:
    name = "webkit"

    def __init__(self, profile: Path, display: str, log: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        script = profile.parent / "webkit-user-script.js"
        script.write_text(RECORD_LABELS)
        options = Options()
        options.binary_location = str(WEBKIT_BROWSER)
        for arg in ("--automation", f"--data-dir={profile}", f"--user-script={script}"):
            options.add_argument(arg)
        options.set_capability("browserName", WEBKIT_APP_NAME)
        # The test browser needs the system Python's PyGObject: never the venv's interpreter on PATH.
        env = {**os.environ, "DISPLAY": display, "PATH": "/usr/bin:/bin", "WEBKIT_DISABLE_COMPOSITING_MODE": "1"}
        env.pop("VIRTUAL_ENV", None)
        service = Service(executable_path=WEBKIT_DRIVER, env=env, log_output=str(log))
        self.driver = webdriver.WebKitGTK(options=options, service=service)
        self.driver.set_script_timeout(120)
        self.blank = self.driver.current_window_handle  # stays open: the browser outlives the app's tabs
        self.version = str(self.driver.capabilities.get("browserVersion", ""))

    def open(self, url: str) -> EnginePage:
        self.driver.switch_to.new_window("tab")
        page = WebKitPage(self, self.driver.current_window_handle)
        self.driver.get(url)
        return page

    def close(self) -> None:
        self.driver.quit()


def missing(engine: str) -> str | None:
    """What is not installed for ``engine`` (``make engines`` installs it), or None."""
    needs = {"firefox": [FIREFOX, shutil.which("node") or "node"], "webkit": [WEBKIT_DRIVER, "/usr/bin/Xvfb"]}[engine]
    absent = [path for path in needs if not os.path.exists(path)]
    if engine == "webkit" and subprocess.run(
        ["/usr/bin/python3", "-c", "import gi; gi.require_version('WebKit2', '4.1')"], capture_output=True, check=False
    ).returncode:
        absent.append("gir1.2-webkit2-4.1 / python3-gi")
    return ", ".join(absent) or None

