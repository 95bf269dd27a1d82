"""notebooks/quickstart.ipynb runs top to bottom (tiny configuration), so it never rots."""

import pytest
import nbformat
from nbclient import NotebookClient

from conftest import REPO


@pytest.mark.slow
def test_quickstart_notebook_executes(monkeypatch):
    monkeypatch.setenv("TEXTCLF_QUICK", "1")
    notebook = nbformat.read(REPO / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    outputs = "".join(
        output.get("text", "") + "".join(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "400 rows, labels: ['fresh', 'rotten']" in outputs
    assert "validation accuracy" in outputs
    assert "'a gorgeous, witty, seductive movie'" in outputs
    # Neither TensorFlow's C++ start-up lines (CUDA probing, oneDNN) nor its Python INFO lines on export.
    noise = ("absl::InitializeLog", "cuda", "oneDNN", "INFO:tensorflow")
    assert [line for line in outputs.splitlines() if any(word in line for word in noise)] == []
