"""Tests for notebooks/: committed without outputs, valid, and each runs top to bottom in tiny mode."""

import configparser
import os
import re

import pytest

from conftest import REPO_ROOT, run_python

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


def _install_cell(notebook):
  [cell] = [cell for cell in _code_cells(notebook)
            if 'IN_COLAB = "google.colab" in sys.modules' in cell.source]
  return cell.source


def test_both_notebooks_share_one_install_cell():
  # tests/test_packaging.py runs the quickstart's on a second Python.
  quickstart, serving = (_install_cell(_read(name)) for name in NOTEBOOKS)
  assert quickstart == serving
  for needed in ('"-c", constraints', "pins.check_environment(constraints)",
                 "kernel.do_shutdown(restart=True)"):
    assert needed in quickstart


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_repository_address_is_setup_cfg_url_everywhere(name):
  parser = configparser.ConfigParser()
  parser.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
  url = parser["metadata"]["url"]
  owner_repo = re.fullmatch(r"https://github\.com/([^/]+/[^/]+)", url).group(1)
  colab = (f"https://colab.research.google.com/github/{owner_repo}/blob/main/"
           f"notebooks/{name}")
  notebook = _read(name)
  settings = _code_cells(notebook)[0].source
  assert re.findall(r'^TFQA_REPOSITORY = "(.*)"$', settings, re.M) == [url]
  assert f"[Open in Colab]({colab})" in notebook.cells[0].source
  text = "\n".join(cell.source for cell in notebook.cells)
  assert "<org>" not in text
  readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
  guide = (REPO_ROOT / "docs" / "NOTEBOOKS.md").read_text(encoding="utf-8")
  assert "<org>" not in readme and "<org>" not in guide
  assert re.findall(r"https://colab\.research\.google\.com/github/[^ `)]+",
                    readme + guide) == [colab.replace(name, "quickstart.ipynb")]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_workdir_is_on_google_drive_by_default_on_colab(name):
  notebook = _read(name)
  assert "USE_GOOGLE_DRIVE = True" in _code_cells(notebook)[0].source
  source = "\n".join(cell.source for cell in _code_cells(notebook))
  assert "if IN_COLAB and USE_GOOGLE_DRIVE:" in source
  assert 'WORKDIR = os.path.join("/content/drive/MyDrive", WORKDIR)' in source


def _execute_in_tiny_mode(notebook, workdir, monkeypatch):
  """Runs the notebook's cells in a kernel started in `workdir`, tiny mode."""
  nbclient = pytest.importorskip("nbclient")
  # The kernel inherits this environment; "python3" is ipykernel's spec,
  # which jupyter_client starts with this interpreter (sys.executable).
  monkeypatch.setenv(MODE_VARIABLE, "tiny")
  monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  client = nbclient.NotebookClient(
      notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
      resources={"metadata": {"path": str(workdir)}})
  # Raises CellExecutionError, naming the cell and its traceback, on the
  # first cell that fails.
  client.execute()


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_in_tiny_mode(name, tmp_path, monkeypatch):
  notebook = _read(name)
  before = sorted(os.listdir(NOTEBOOK_DIR))
  _execute_in_tiny_mode(notebook, tmp_path, monkeypatch)
  stdout = _stdout(notebook)
  missing = [line for line in EXPECTED_OUTPUT[name] if line not in stdout]
  assert missing == [], stdout[-5000:]
  # Everything went to the working directory given to the kernel.
  workdir = {"quickstart.ipynb": "tfqa_quickstart",
             "serving.ipynb": "tfqa_serving"}[name]
  assert (tmp_path / workdir).is_dir()
  assert sorted(os.listdir(NOTEBOOK_DIR)) == before


@pytest.mark.slow
def test_quickstart_time_budget_replaces_the_modes_epochs(tmp_path,
                                                          monkeypatch):
  notebook = _read("quickstart.ipynb")
  settings = _code_cells(notebook)[0]
  assert "\nTIME_BUDGET = None\n" in settings.source
  settings.source = settings.source.replace("\nTIME_BUDGET = None\n",
                                            '\nTIME_BUDGET = "1h30m"\n')
  # Up to the cell that prints the tfqa_train command; nothing is trained.
  last = max(i for i, cell in enumerate(notebook.cells)
             if "TRAIN_COMMAND = " in cell.source)
  notebook.cells = notebook.cells[:last + 1]
  _execute_in_tiny_mode(notebook, tmp_path, monkeypatch)
  [command] = [line for line in _stdout(notebook).splitlines()
               if line.startswith("tfqa_train ")]
  flags = command.split()
  # Tiny mode's 40 epochs give way to the budget (tfqa refuses both).
  assert "--time_budget=1h30m" in flags
  assert [f for f in flags if "epochs" in f] == []


def test_install_cell_refuses_a_wheel_without_its_pins(tmp_path):
  import zipfile
  wheel = tmp_path / "tfqa-0.0.1-py3-none-any.whl"
  with zipfile.ZipFile(wheel, "w") as archive:
    archive.writestr("tfqa/__init__.py", "")
  notebook = _read("quickstart.ipynb")
  script = "\n".join([
      "import sys, types",
      'sys.modules["google.colab"] = types.ModuleType("google.colab")',
      _code_cells(notebook)[0].source,
      f"TFQA_WHEEL = {str(wheel)!r}",
      _install_cell(notebook)])
  proc = run_python(["-c", script], cwd=tmp_path, expect_fail=True,
                    timeout=120)
  assert proc.stderr.strip().splitlines()[-1] == (
      f"ValueError: TFQA_WHEEL={str(wheel)!r} holds 0 share/tfqa/"
      f"constraints.txt; expected 1 (a wheel built by `make wheel`).")
