"""The notebooks run from top to bottom against a simulated campaign (nbclient), so they never rot."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

from campaign import make_campaign
from readings_table import create_readings, insert_readings

from ingest import registry as reg

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notebooks") / "qsec.duckdb"
    con = duckdb.connect(str(path))
    create_readings(con)
    insert_readings(con, make_campaign(hours=1.0).records)
    reg.ensure_registry_schema(con)
    reg.create_campaign(con, "versailles", title="Versailles, mai 2026", public=True)
    con.close()
    return path


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_from_top_to_bottom(notebook: Path, store: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSEC_STORE", str(store))
    monkeypatch.setenv("QSEC_CAMPAIGN", "versailles")
    monkeypatch.setenv("QSEC_OUT", str(tmp_path / "exports"))
    nb = nbformat.read(notebook, as_version=4)
    started = time.monotonic()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert time.monotonic() - started < 60
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    if notebook.stem == "researcher-walkthrough":
        assert (tmp_path / "exports" / "versailles.zip").stat().st_size > 0
    assert os.environ["QSEC_STORE"] == str(store)
