"""Tests for tfqa.cli.common: every tool's one catch-and-exit policy (run_tool)."""

import pytest

from conftest import run_python

# A tool whose main raises the error named by its one argument.
_TOOL = """
import errno, sys
from absl import app
from tfqa.cli import common

ERRORS = {
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

common.run_tool(main, "tool: fails on purpose.", {}, describe=describe)
"""


@pytest.mark.parametrize("kind, line", [
    # The library's argument named as the tool's flag, where it is one
    # (doc_stride is not a flag of this tool: the message is unchanged).
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
