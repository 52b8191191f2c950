from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PRETRAINED = SHARED_DATA / "pretrained"


def requires_shared_data(*names: str):
    """Skip, with the reason, when ../shared/data (or a file in it) is absent."""
    missing = [n for n in names if not (SHARED_DATA / n).exists()]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} in {SHARED_DATA}")


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield
