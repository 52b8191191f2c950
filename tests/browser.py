"""Headless Chromium for tests: find it (or install Debian's package), open a page from
disk, and collect what the page wrote to its console.

``python tests/browser.py --install`` installs Chromium where it is missing (as root,
with apt-get); ``make test`` can call it before pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CONSOLE_MARKERS = ("CONSOLE", "Uncaught")
FLAGS = ("--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


def install_chromium(timeout_s: int = 900) -> str | None:
    """Chromium's path, installing Debian's ``chromium`` first where it is missing and this
    process may (root, apt-get present); None where it is missing and cannot be installed."""
    found = find_chromium()
    if found or not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        try:
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=timeout_s)
        except (subprocess.SubprocessError, OSError):
            return find_chromium()
    return find_chromium()


@dataclass
class Page:
    """What Chromium made of a page: its DOM after scripts ran, its console lines, and
    the screenshot where one was asked for."""

    dom: str
    console: list[str]
    screenshot: Path | None
    stderr: str


def console_lines(stderr: str) -> list[str]:
    """The page's console messages (``INFO:CONSOLE``, ``ERROR:CONSOLE``, uncaught errors)
    among Chromium's own log lines."""
    return [line for line in stderr.splitlines() if any(marker in line for marker in CONSOLE_MARKERS)]


def open_page(chromium: str, page: Path, screenshot: Path | None = None, size: tuple[int, int] = (1280, 4000),
              timeout_s: int = 120) -> Page:
    """Load ``page`` from disk twice: once to dump the DOM, once for a screenshot."""
    url = page.resolve().as_uri()
    stderr_parts = []
    with tempfile.TemporaryDirectory(prefix="trimkit-chromium-") as profile:
        base = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
        dumped = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout_s)
        stderr_parts.append(dumped.stderr)
        if screenshot is not None:
            shot = subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True, text=True,
                                  timeout=timeout_s)
            stderr_parts.append(shot.stderr)
    stderr = "\n".join(stderr_parts)
    return Page(dumped.stdout, console_lines(stderr), screenshot if screenshot and screenshot.exists() else None,
                stderr)


def image_stats(png: Path) -> tuple[float, int]:
    """(share of pixels that are not near-white, number of distinct colours) of a PNG."""
    import numpy as np

    try:
        from PIL import Image

        pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.uint8)
    except ImportError:
        from matplotlib import image

        pixels = (image.imread(str(png))[..., :3] * 255).astype(np.uint8)
    flat = pixels.reshape(-1, 3)
    non_white = float((flat.min(axis=1) < 235).mean())
    colours = len(np.unique(flat[:: max(1, len(flat) // 200_000)], axis=0))
    return non_white, colours


if __name__ == "__main__":
    if "--install" in sys.argv[1:]:
        path = install_chromium()
        print(path or "chromium is missing and cannot be installed here (needs root and apt-get)")
        sys.exit(0 if path else 1)
    print(find_chromium() or "chromium not found")
