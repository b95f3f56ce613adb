"""The notebooks in ``notebooks/`` run top to bottom, and their committed copies show their results.

Each notebook is executed on a copy, in a scratch directory, by a Jupyter kernel running this
interpreter; the committed file is never written. A notebook passes when no cell raises, nothing is
written to stderr (a warning inside the kernel fails the notebook, as warnings fail the rest of the
suite), and every figure cell (one that calls ``plt.show()``) displays a PNG. The committed copies
are checked too: executed in order, with their figures embedded, and small.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
README_LIST = ROOT / "README.md"

CELL_TIMEOUT_S = 300
MAX_NOTEBOOK_BYTES = 1_500_000
KERNEL = "python3"


def _ids(paths: list[Path]) -> list[str]:
    return [path.stem for path in paths]


def _is_figure_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and "plt.show()" in cell.source


def _pngs(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def _stderr(cell: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stderr"
    )


@pytest.fixture(scope="session")
def kernel_environment(tmp_path_factory: pytest.TempPathFactory):
    """A ``python3`` kernelspec for this interpreter, found first, and a headless environment.

    ``JUPYTER_PATH`` takes precedence over user-level kernelspecs, so a ``python3`` kernel
    registered elsewhere (another Python) cannot be picked up. Works in a fresh virtual
    environment with only ``pip install -e ".[test]"``.
    """
    data_dir = tmp_path_factory.mktemp("jupyter")
    spec_dir = data_dir / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (optaxtra tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(data_dir))
        patch.setenv("MPLBACKEND", "Agg")
        patch.setenv("JAX_PLATFORMS", "cpu")
        yield


def test_notebooks_exist() -> None:
    assert len(NOTEBOOKS) >= 5, [path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path: Path, kernel_environment, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    interpreter = nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")
    notebook.cells.insert(0, interpreter)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}")

    assert interpreter.outputs[0]["text"].strip() == sys.prefix, "the kernel runs another Python"
    cells = notebook.cells[1:]
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        assert not _stderr(cell), f"{path.name}, cell {index} wrote to stderr:\n{_stderr(cell)}"
        if _is_figure_cell(cell):
            assert _pngs(cell) >= 1, f"{path.name}, cell {index} shows no figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_shows_its_results(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{path.name} is {path.stat().st_size:,} bytes"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        f"{path.name} is not stored as executed once, top to bottom"
    )
    for index, cell in enumerate(notebook.cells):
        kinds = {output.get("output_type") for output in cell.get("outputs", [])}
        assert "error" not in kinds, f"{path.name}, cell {index} is stored with an error"
        assert not _stderr(cell), f"{path.name}, cell {index} is stored with stderr output"
        if _is_figure_cell(cell):
            assert _pngs(cell) >= 1, f"{path.name}, cell {index} is stored without its figure"


def test_readme_list_links_every_notebook() -> None:
    text = README_LIST.read_text()
    linked = set(re.findall(r"\(notebooks/([^)]+\.ipynb)\)", text))
    assert linked == {path.name for path in NOTEBOOKS}
