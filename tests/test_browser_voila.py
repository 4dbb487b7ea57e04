"""The pruning explorer as a standalone web page: Voilà serves notebook 05, headless Chromium uses it.

Starts ``voila notebooks/05_pruning_explorer.ipynb`` (quick mode) on a free local port (the README's
command), loads the page (Voilà runs the notebook for each visitor and shows only its outputs and
text), waits for the explorer, moves the eps_h slider with the keyboard and checks that the kept-token
count and the image change. The screenshot goes to ``figures_dir()/explorer_voila.png`` (a temporary
folder under pytest). As in ``test_browser_explorer.py``, Playwright drives Debian's
``/usr/bin/chromium`` (nothing is downloaded); without it the test is skipped, and fails in CI.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftp_pose.paths import REPO_ROOT, figures_dir
from test_browser_explorer import CHROMIUM, CHROMIUM_ARGS, _in_ci, _stop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = REPO_ROOT / "notebooks" / "05_pruning_explorer.ipynb"
STATUS_HAS = ("() => { const e = document.querySelector('.ftp-explorer-status');"
              " return e && e.textContent.includes(%r); }")


def _port_free_now() -> int:
    """A port free at this moment; another process may take it before voila binds it, so the
    fixture starts a new server on a new port when one exits before listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"voila did not listen on port {port} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def voila(tmp_path: Path):
    """A Voilà server on notebook 05; yields its base URL."""
    if not CHROMIUM.is_file():
        msg = f"{CHROMIUM} not found (apt-get install chromium)"
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("voila")
    # the notebook loads the cached quick checkpoint: make sure it exists before the bounded waits
    from ftp_pose.engine.quick import quick_checkpoint

    quick_checkpoint()
    env = dict(os.environ, FTP_POSE_QUICK="1", MPLBACKEND="Agg", JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               FTP_POSE_FIGURES=str(figures_dir()))
    log = tmp_path / "voila.log"
    for attempt in range(3):
        port = _port_free_now()
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--port={port}",
                 "--Voila.ip=127.0.0.1", "--show_tracebacks=True"],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_for_port(port, proc, log)
            break
        except RuntimeError:  # exited before listening (e.g. the port was taken meanwhile): try another
            _stop(proc)
            if attempt == 2:
                raise
        except BaseException:
            _stop(proc)
            raise
    try:
        yield f"http://127.0.0.1:{port}/", log
    finally:
        _stop(proc)


def test_explorer_slider_updates_the_output_in_voila(voila) -> None:
    from playwright.sync_api import sync_playwright

    url, log = voila
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            page.set_default_timeout(120_000)
            # Voilà executes the whole notebook before it answers (minutes on a busy 2-core machine)
            page.goto(url, timeout=600_000, wait_until="commit")
            status = page.locator(".ftp-explorer-status")
            status.wait_for(timeout=600_000)
            page.wait_for_function(STATUS_HAS % "HRB kept", timeout=300_000)
            before_text = status.text_content() or ""
            image = page.locator("img.ftp-explorer-image, .ftp-explorer-image img").first
            before_src = image.get_attribute("src")
            assert "HRB kept 128 / 768" in before_text and "kept: 128 high-res / " in before_text, before_text
            assert "explorer = Explorer(" not in page.inner_text("body")   # a page: outputs and text, no code

            # eps_h is the first slider: focus its handle, move it 6 -> 2 with the keyboard
            handle = page.locator(".widget-slider .noUi-handle").first
            handle.scroll_into_view_if_needed()
            handle.focus()
            for _ in range(4):
                handle.press("ArrowLeft")
            try:   # each key press commits a value and redraws: wait for the last one
                page.wait_for_function(STATUS_HAS % "HRB kept 384 / 768", timeout=180_000)
            except Exception:  # noqa: BLE001 - reported by the assertion below, with the text seen
                pass
            page.wait_for_timeout(500)
            after_text = status.text_content() or ""
            after_src = image.get_attribute("src")
            page.screenshot(path=str(figures_dir() / "explorer_voila.png"), full_page=False)
        finally:
            browser.close()
    assert "HRB kept 384 / 768" in after_text and "kept: 384 high-res / " in after_text, \
        f"{after_text}\nvoila log:\n{log.read_text()[-2000:]}"
    assert after_src != before_src
