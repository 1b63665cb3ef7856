"""The notebooks in notebooks/ run top to bottom against a server on the sample lake, as a data
scientist would run them; their cells assert what they show. Executed copies and their plots
(PNG) are written to notebooks/_build/."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import BIN, ROOT, start_server

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BUILD = ROOT / "notebooks" / "_build"


@pytest.fixture(scope="module")
def sample_server():
    # The suite runs the debug build, where notebook 06's tapped bootstrap (one second in a
    # release build) takes longer than the default 30 s query limit.
    proc, url = start_server("--lake", ROOT / "data" / "sample", "--query-timeout", "600")
    yield url
    proc.terminate()
    proc.wait()


def test_there_are_six_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, sample_server, monkeypatch):
    BUILD.mkdir(exist_ok=True)
    monkeypatch.setenv("CXLAKE_URL", sample_server)
    monkeypatch.setenv("CXLAKE_FIGURES", str(BUILD))
    monkeypatch.setenv("CXLAKE_BIN", str(BIN))
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "notebooks") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, BUILD / path.name)
    figures = sorted(p.name for p in BUILD.glob(f"{path.stem[:2]}_*.png"))
    assert figures, f"{path.name} saved no plot"
