from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# fixtures shared by the test folders: postgres_url (tests/support/postgres.py)
pytest_plugins = ["postgres"]

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


def pytest_configure(config):
    # Under pytest-xdist each worker takes one core: torch's and ONNX Runtime's own threads
    # beside another worker's would oversubscribe the CPUs (commands the tests start inherit it).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)


HEAVY_FOLDERS = ("e2e", "cli")


#: modules whose tests take longest, run first so that parallel workers end together
FIRST = ("e2e/test_readme.py", "cli/test_cli.py", "measure/test_remote.py", "pipeline/test_run.py",
         "search/test_search_postgres.py", "models/test_independent_resnet.py", "search/test_search.py")


def pytest_collection_modifyitems(config, items):
    """Tests in tests/e2e and tests/cli go through whole commands: marked ``heavy`` (as are
    other whole paths, by hand), which ``make test-quick`` leaves out. The longest modules
    go first."""
    for item in items:
        if Path(item.fspath).parent.name in HEAVY_FOLDERS:
            item.add_marker(pytest.mark.heavy)

    def rank(item) -> int:
        path = Path(item.fspath).as_posix()
        return next((i for i, name in enumerate(FIRST) if path.endswith(name)), len(FIRST))

    items.sort(key=rank)
