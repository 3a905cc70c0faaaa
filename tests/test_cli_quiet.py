"""Tests for tfqa.cli.quiet: the tools hide other libraries' messages unless --verbosity is given."""

import os
import re
import textwrap

import pytest

from tfqa.cli import quiet

from conftest import REPO_ROOT, run_python, tiny_train_flags

# What the tools printed before (TensorFlow's C++ startup lines, its CUDA
# probe on a machine without a GPU, transformers' deprecation banner).
_CHATTER = re.compile(r"cuInit|InitializeLog|deprecated")
# absl's prefix of an info line: "I1201 14:02:34.183306 140565746965376 x.py:230] ".
_ABSL_INFO_PREFIX = re.compile(r"I\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+\.py:\d+\] ")
# A progress line (stdout is a pipe here, not a terminal).
_PROGRESS_LINE = re.compile(
    r"step (\d+)/2 \(epoch 1/1\): loss \d+\.\d{4}, lr \d\.\d\de[-+]\d\d, "
    r"\d+\.\d windows/s, ETA \d+:\d\d:\d\d")


@pytest.mark.parametrize("argv,expected", [
    ([], None),
    (["--verbosity=1"], 1),
    (["--verbosity", "0"], 0),
    (["-v", "-1"], -1),
    (["-v=2"], 2),
    (["--v=0"], 0),
    (["-verbosity=1"], 1),
    (["--verbosity=0", "--verbosity=-2"], -2),  # the last one wins
    (["--verbosity=x"], None),  # absl reports it
    (["--verbosity"], None),
    (["--verbosity_x=1", "--model_dir=v"], None),
    (["--", "--verbosity=1"], None),  # not a flag after --
    (["-q", "tests/x.py", "-v", "tests"], None),
])
def test_verbosity_from_argv(argv, expected):
  assert quiet.verbosity_from_argv(["tool", *argv]) == expected


# What quiet.py sets: the tests see what it does without them.
_QUIET_VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "TRANSFORMERS_VERBOSITY")


def _run(args, cwd):
  return run_python(args, cwd=cwd, exit_status=None, unset=_QUIET_VARIABLES)


@pytest.fixture(scope="module")
def default_run(tiny_files, tmp_path_factory):
  """(process, model_dir) of a default tfqa_train run of the tiny model."""
  model_dir = tmp_path_factory.mktemp("quiet") / "run"
  proc = _run(["-m", "tfqa.cli.train", f"--model_dir={model_dir}",
               *tiny_train_flags(tiny_files, max_steps=2, eval_file=None,
                                 progress_every_steps=1)],
              cwd=model_dir.parent)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc, str(model_dir)


@pytest.mark.slow
def test_default_train_run_prints_no_chatter(default_run):
  proc, _ = default_run
  for stream in (proc.stdout, proc.stderr):
    assert [line for line in stream.splitlines()
            if _CHATTER.search(line)] == []
  # tfqa's own messages stay, as plain lines without absl's prefix.
  assert "14 windows; 4 steps per epoch, 2 in all" in proc.stderr
  assert [line for line in proc.stderr.splitlines()
          if _ABSL_INFO_PREFIX.match(line)] == []


@pytest.mark.slow
def test_progress_lines_when_stdout_is_not_a_terminal(default_run):
  proc, _ = default_run
  # No progress bar: no carriage returns, backspaces or "[=====" bars.
  assert not re.search(r"[\r\b]|\[=+", proc.stdout)
  lines = proc.stdout.splitlines()
  assert [int(_PROGRESS_LINE.fullmatch(line).group(1))
          for line in lines[:2]] == [1, 2]
  assert lines[2] == "{"  # then the result, as JSON


@pytest.mark.slow
def test_verbosity_brings_the_chatter_back(default_run, tiny_files):
  _, model_dir = default_run
  proc = _run(["-m", "tfqa.cli.evaluate", f"--model_dir={model_dir}",
               f"--eval_file={tiny_files['train_v2']}", "--verbosity=0"],
              cwd=REPO_ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "InitializeLog" in proc.stderr  # TensorFlow's C++ startup lines
  assert "TensorFlow and JAX classes are deprecated" in proc.stderr


_LOG_ONE_INFO_LINE = """
from tfqa.cli import common
from tfqa.model import modeling

def main(argv):
  modeling.log_weights_report(modeling.WeightsReport("model_dir"))

common.run_tool(main, "tool: logs one line.", {})
"""


@pytest.mark.parametrize("argv,prefixed", [([], False), (["--verbosity=0"], True),
                                           (["--showprefixforinfo"], True)])
def test_info_lines_are_plain_unless_asked(tmp_path, argv, prefixed):
  proc = run_python(["-c", _LOG_ONE_INFO_LINE, *argv], cwd=tmp_path,
                    unset=_QUIET_VARIABLES, timeout=120)
  line = "Built model from model_dir: 0 missing, 0 unexpected weights."
  ours = [l for l in proc.stderr.splitlines() if l.endswith(line)]
  assert len(ours) == 1, proc.stderr
  if prefixed:
    assert _ABSL_INFO_PREFIX.fullmatch(ours[0][:-len(line)]), ours[0]
  else:
    assert ours[0] == line and proc.stderr == line + "\n"


_FAKE_NATIVE_MODULE = """
import os
os.write(2, b"native startup chatter\\n")
if os.environ.get("FAIL"):
  raise ImportError("the library did not load")
"""

_IMPORT_IT = """
import sys
from tfqa.cli import quiet
quiet.capture_import_stderr("fake_native")
try:
  import fake_native
except ImportError as e:
  print("import failed:", e, file=sys.stderr)
  sys.exit(3)
# The module keeps its own loader, as if imported plainly.
print("imported by", type(fake_native.__loader__).__name__, file=sys.stderr)
"""


@pytest.mark.parametrize("fail", [False, True])
def test_stderr_of_an_import_is_shown_only_when_it_fails(tmp_path, fail):
  (tmp_path / "fake_native.py").write_text(_FAKE_NATIVE_MODULE)
  proc = run_python(["-c", textwrap.dedent(_IMPORT_IT)], exit_status=None,
                    env={"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{tmp_path}",
                         "FAIL": "1" if fail else ""},
                    unset=_QUIET_VARIABLES, timeout=60)
  if fail:
    assert (proc.returncode, proc.stderr) == (
        3, "native startup chatter\nimport failed: the library did not "
           "load\n")
  else:
    assert (proc.returncode, proc.stderr) == (
        0, "imported by SourceFileLoader\n")
