"""Headless Chromium for tests: find it, open a page from disk, and collect what the page
wrote to its console. ``make browser`` (run by ``make test``) installs Debian's chromium."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CONSOLE_MARKERS = ("CONSOLE", "Uncaught")
FLAGS = ("--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


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
    print(find_chromium() or "chromium not found")
