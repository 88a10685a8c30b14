"""The notebooks in notebooks/: stored without outputs, and each one runs from top to bottom.

Execution goes through nbclient with the `python3` kernel in a temporary working directory (the
notebooks write into ./notebook-out/ there), with the checkout first on the kernel's PYTHONPATH so
it imports this bender whether or not the package is installed. Each notebook must leave behind
the files it promises, so a notebook that silently does nothing fails too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["01-quickstart", "02-dataset-building", "03-bending"]


def tracked_notebooks() -> list[Path]:
    """Notebooks git knows about (what gets committed), else every notebook in the folder."""
    try:
        out = subprocess.run(["git", "ls-files", "--", "notebooks/*.ipynb"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        out = []
    paths = [REPO / p for p in out] or sorted(NOTEBOOKS.glob("*.ipynb"))
    return [p for p in paths if p.exists()]


def test_every_notebook_is_listed_here():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("path", tracked_notebooks(), ids=lambda p: p.name)
def test_notebook_is_valid_and_stripped(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "widgets" not in nb.metadata, "saved widget state: clear it before committing"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
        assert "/work/" not in cell.source, f"{path.name} cell {i} hard-codes a path"


def run_notebook(name: str, cwd: Path, timeout: int = 300):
    """Execute notebooks/NAME.ipynb in `cwd`; returns the executed notebook."""
    from nbclient import NotebookClient

    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", MPLBACKEND="Agg")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env, cwd=str(cwd))
    return nb


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def image_outputs(nb) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


@pytest.mark.slow
def test_quickstart_runs(tmp_path):
    nb = run_notebook("01-quickstart", tmp_path)
    out = tmp_path / "notebook-out" / "01-quickstart"
    assert (out / "seeds-0-15.png").stat().st_size > 0
    assert (out / "walk.mp4").stat().st_size > 0 and (out / "walk.mp4.yaml").exists()
    text = outputs_text(nb)
    assert "36 frames" in text  # 3 keyframes x 12 frames, looped
    assert "synthesis.b8.conv1" in text  # the list of bendable layers
    assert image_outputs(nb) >= 4


@pytest.mark.slow
def test_dataset_building_runs(tmp_path):
    nb = run_notebook("02-dataset-building", tmp_path)
    out = tmp_path / "notebook-out" / "02-dataset-building"
    text = outputs_text(nb)
    assert "not an image" in text and "too small" in text  # the planted bad files were caught
    assert "outlier" in text
    with zipfile.ZipFile(out / "rocks-64.zip") as zf:
        names = zf.namelist()
    assert "dataset.json" in names and sum(n.endswith(".png") for n in names) >= 30
    assert (out / "sets" / "rocks" / "curation" / "curation.jsonl").exists()
    assert image_outputs(nb) >= 3


@pytest.mark.slow
def test_bending_runs(tmp_path):
    nb = run_notebook("03-bending", tmp_path)
    out = tmp_path / "notebook-out" / "03-bending"
    runs = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    run = runs[0]
    assert len(list((run / "checkpoints").glob("snapshot-*.safetensors"))) >= 2
    assert (run / "timeline.mp4").stat().st_size > 0
    assert (out / "overbent-2.safetensors").exists()
    assert image_outputs(nb) >= 4


if __name__ == "__main__":  # pragma: no cover - handy for running one notebook by hand
    sys.exit(pytest.main([__file__, "-q", *sys.argv[1:]]))
