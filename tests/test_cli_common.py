"""Tests for tfqa.cli.common: every tool's one catch-and-exit policy (run_tool), and which tools let transformers import PyTorch."""

import importlib.util

import pytest

from conftest import run_python

# A tool whose main raises the error named by its one argument.
_TOOL = """
import errno, sys
from absl import app
from absl import flags
from tfqa import errors
from tfqa.cli import common

flags.DEFINE_integer("doc_stride", 128, "A flag named as a library argument.")
ERRORS = {
    "argument": errors.ArgumentError("doc_stride", 100, "Expected < 64."),
    "positional": errors.ArgumentError("data_file", "a.json", "Expected a "
                                       "SQuAD file."),
    "value": ValueError("Invalid value for argument `doc_stride`. Received: "
                        "doc_stride=100. Expected < 64."),
    "import": ImportError("--onnx needs the `onnx` extra."),
    "oserror": OSError(errno.ENOSPC, "No space left on device"),
    "usage": app.UsageError("--model_dir is required."),
}

def main(argv):
  raise ERRORS[argv[1]]

def describe(error):
  if isinstance(error, OSError):
    return f"cannot write: {error}. Nothing was lost."
  return None

common.run_tool(main, "tool: fails on purpose.", {}, describe=describe,
                labels={"data_file": "DATA_FILE"})
"""


@pytest.mark.parametrize("kind, line", [
    # The library's argument named as the tool's flag, by the table of its
    # flags and `labels`.
    ("argument", "tool: error: Invalid value for flag --doc_stride. "
                 "Received: --doc_stride=100. Expected < 64."),
    ("positional", "tool: error: Invalid value for flag DATA_FILE. "
                   "Received: DATA_FILE='a.json'. Expected a SQuAD file."),
    # A message is not read for names: a plain ValueError says what it says.
    ("value", "tool: error: Invalid value for argument `doc_stride`. "
              "Received: doc_stride=100. Expected < 64."),
    ("import", "tool: error: --onnx needs the `onnx` extra."),
    ("oserror", "tool: error: cannot write: [Errno 28] No space left on "
                "device. Nothing was lost."),
    ("usage", "tool: error: --model_dir is required. (`tool --help` lists "
              "the flags)"),
])
def test_an_error_is_one_line_and_exit_status_1(tmp_path, kind, line):
  proc = run_python(["-c", _TOOL, kind], expect_fail=True, cwd=tmp_path)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1] == line
  assert "Traceback" not in proc.stderr


def test_a_bug_is_not_hidden(tmp_path):
  code = _TOOL.replace('"usage": app', '"bug": KeyError("x"), "usage": app')
  proc = run_python(["-c", code, "bug"], expect_fail=True, cwd=tmp_path)
  assert "Traceback" in proc.stderr and "KeyError: 'x'" in proc.stderr


_TORCH_AFTER_TRANSFORMERS = (
    "import sys, {module}, transformers; print('torch' in sys.modules)")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="needs torch installed (the `torch` extra)")
@pytest.mark.parametrize("module, imports_torch", [
    ("tfqa.cli.train", False), ("tfqa.cli.evaluate", False),
    ("tfqa.cli.predict", False), ("tfqa.cli.export", True)])
def test_only_the_export_lets_transformers_import_torch(module,
                                                        imports_torch):
  # tfqa_export checks the PyTorch reload of what it writes; the others run
  # no PyTorch model and should not pay for importing it.
  proc = run_python(
      ["-c", _TORCH_AFTER_TRANSFORMERS.format(module=module)],
      unset=("USE_TORCH", "USE_TF"))
  assert proc.stdout.strip() == str(imports_torch)
