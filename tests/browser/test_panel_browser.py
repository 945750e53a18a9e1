"""The panel in a real browser: JupyterLab + Debian's Chromium driven by playwright.

Opens ``notebooks/05_orchestrator_panel.ipynb`` in a JupyterLab started on a free loopback
port (empty token, temporary root, config, data, runtime and settings dirs, no news or
update checks), runs all cells and checks the DOM: task rows and a rendered plotly plot,
task rows that change while the long cell still runs, no error or stderr output, every
cell executed. Screenshots go to ``build/browser/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "05_orchestrator_panel.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "build" / "browser"
LONG_CELL = "the kernel stays busy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the notebook in a private JupyterLab."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing: run .ci/browser (installs Debian's chromium)")
    pytest.importorskip("playwright", reason="pip install playwright (the test extra)")
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    settings = base / "settings"
    # Render every cell (no windowing: the panel and the long cell stay in the DOM) and
    # fetch no news.
    write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
               {"windowingMode": "none"})
    write_json(settings / "@jupyterlab" / "apputils-extension" /
               "notification.jupyterlab-settings", {"fetchNews": "false",
                                                    "checkForUpdates": False})
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_DATA_DIR": str(base / "data"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "IPYTHONDIR": str(base / "ipython"), "FOXNB_CACHE_DIR": str(base / "cache"),
           "JUPYTER_NO_CONFIG": "1"}
    port = free_port()
    log = (base / "lab.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
         "--ServerApp.password=", f"--ServerApp.root_dir={root}", "--allow-root",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" +
                                       (base / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.25)
        yield f"{url}/lab/tree/{NOTEBOOK}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def task_rows(page: Any) -> list[str]:
    return [str(t) for t in page.locator(".foxnb-task").all_inner_texts()]


def test_panel_runs_live_in_jupyterlab(lab: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(lab)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            choose = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
            with contextlib.suppress(PlaywrightTimeout):  # "Select Kernel" on a first open
                choose.click(timeout=15_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

            long_cell = page.locator(".jp-CodeCell", has_text=LONG_CELL)
            prompt = long_cell.locator(".jp-InputPrompt")
            # Every queued cell shows [*]: the long cell runs once the cell before it is done.
            page.wait_for_function(
                """long => {
                    const cells = [...document.querySelectorAll('.jp-CodeCell')];
                    const i = cells.findIndex(c => c.textContent.includes(long));
                    const prev = cells[i - 1].querySelector('.jp-InputPrompt').textContent;
                    return /\\[\\d+\\]/.test(prev);
                }""", arg=LONG_CELL, timeout=180_000)
            page.locator(".widget-vbox.foxnb-panel").first.scroll_into_view_if_needed()
            # Sample the rows while the long cell runs: they must change under a busy kernel.
            seen: list[list[str]] = []
            for _ in range(120):
                rows = task_rows(page)
                if "[*]" not in prompt.inner_text():
                    break
                if any("\tbatch\t" in r for r in rows) and (not seen or rows != seen[-1]):
                    seen.append(rows)
                    if len(seen) == 2:
                        page.screenshot(path=str(SHOTS / "05-during-long-cell.png"))
                page.wait_for_timeout(250)
            assert len(seen) >= 2, "task rows did not change while the long cell ran"

            last_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").last
            page.wait_for_function(
                "el => /\\[\\d+\\]/.test(el.textContent)", arg=last_prompt.element_handle(),
                timeout=180_000)
            page.wait_for_timeout(1000)
            page.locator(".jp-Notebook .jp-Cell").first.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "05-after-run-all.png"), full_page=True)

            prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            assert prompts and all("[" in p and "*" not in p and "[ ]" not in p
                                   for p in prompts), prompts
            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert errors.count() == 0, errors.all_inner_texts()
            assert page.locator(".widget-vbox.foxnb-panel").count() >= 1  # the live widget
            assert len(task_rows(page)) >= 12
            assert page.locator(".foxnb-breaker").count() >= 1
            plots = page.locator(".js-plotly-plot .main-svg")
            assert plots.count() >= 1  # a plotly plot rendered (bundled, no CDN)
            assert page.locator(".js-plotly-plot .bars .point").count() >= 1  # with bars
        except BaseException:
            page.screenshot(path=str(SHOTS / "05-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
