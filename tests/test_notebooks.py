"""Tests for notebooks/: committed without outputs, valid, and each runs top to bottom in tiny mode."""

import os

import pytest

from conftest import REPO_ROOT

nbformat = pytest.importorskip("nbformat")

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = ["quickstart.ipynb", "serving.ipynb"]
# The first cell reads the mode from this variable; tests run "tiny".
MODE_VARIABLE = "TFQA_NOTEBOOK_MODE"
CELL_TIMEOUT_S = 600
# Lines each notebook prints only when its steps worked (tiny mode).
EXPECTED_OUTPUT = {
    "quickstart.ipynb": [
        "*** killed tfqa_train (SIGKILL). On disk: checkpoint ckpt-",
        "train_log.jsonl: steps 1..160, each exactly once.",
        "serving_default agrees with the Python path on 100%",
        "pipeline: ",
    ],
    "serving.ipynb": [
        "signature_def['serving_default']",
        "record 3: model 'tfqa', signature 'serving_default'",
        '"predictions": [',
        '"outputs": {',
        "11 questions from ",
        "python path, 1 question",
    ],
}


def _read(name):
  return nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)


def _code_cells(notebook):
  return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _stdout(notebook):
  return "".join(output.get("text", "")
                 for cell in _code_cells(notebook)
                 for output in cell.outputs
                 if output.output_type == "stream")


def test_notebook_directory_holds_exactly_the_two_notebooks():
  assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs(name):
  notebook = _read(name)
  nbformat.validate(notebook)
  dirty = [index for index, cell in enumerate(notebook.cells)
           if cell.cell_type == "code" and
           (cell.outputs or cell.execution_count is not None)]
  assert dirty == [], (
      f"{name}: cells {dirty} have outputs or an execution count; clear "
      f"them before committing (Jupyter: Edit > Clear All Outputs).")
  assert "widgets" not in notebook.metadata


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_cell_holds_the_settings_and_reads_the_mode(name):
  first = _code_cells(_read(name))[0]
  assert "parameters" in first.metadata.get("tags", [])
  assert f'MODE = os.environ.get("{MODE_VARIABLE}", ' in first.source
  assert "import tfqa" not in first.source and "tensorflow" not in first.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_code_cells_compile(name):
  transformer = pytest.importorskip(
      "IPython.core.inputtransformer2").TransformerManager()
  for index, cell in enumerate(_code_cells(_read(name))):
    compile(transformer.transform_cell(cell.source), f"{name}[{index}]",
            "exec")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_legacy_keras_is_set_before_tensorflow_is_imported(name):
  source = "\n".join(cell.source for cell in _code_cells(_read(name)))
  assert source.index('os.environ["TF_USE_LEGACY_KERAS"] = "1"') < (
      source.index("import tensorflow"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_in_tiny_mode(name, tmp_path, monkeypatch):
  nbclient = pytest.importorskip("nbclient")
  # The kernel inherits this environment; "python3" is ipykernel's spec,
  # which jupyter_client starts with this interpreter (sys.executable).
  monkeypatch.setenv(MODE_VARIABLE, "tiny")
  monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  notebook = _read(name)
  before = sorted(os.listdir(NOTEBOOK_DIR))
  client = nbclient.NotebookClient(
      notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
      resources={"metadata": {"path": str(tmp_path)}})
  # Raises CellExecutionError, naming the cell and its traceback, on the
  # first cell that fails.
  client.execute()
  stdout = _stdout(notebook)
  missing = [line for line in EXPECTED_OUTPUT[name] if line not in stdout]
  assert missing == [], stdout[-5000:]
  # Everything went to the working directory given to the kernel.
  workdir = {"quickstart.ipynb": "tfqa_quickstart",
             "serving.ipynb": "tfqa_serving"}[name]
  assert (tmp_path / workdir).is_dir()
  assert sorted(os.listdir(NOTEBOOK_DIR)) == before
