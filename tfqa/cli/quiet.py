"""Quiet tools: other libraries' messages are hidden unless --verbosity is given.

TensorFlow prints its C++ runtime's messages while its libraries load
(oneDNN, CUDA probing, "failed call to cuInit", absl's "All log messages
before absl::InitializeLog() ..."); transformers warns that its TensorFlow
classes are deprecated (advice to migrate or pin that tfqa has followed: it
pins 4.57 and every export carries PyTorch weights; README and BUILD.md say
so, which is why the banner stays with the hidden logs); TensorFlow, Keras and tf2onnx narrate saves and
conversions through Python logging. By default tfqa's tools show their own
messages and other libraries' errors only:

- TF_CPP_MIN_LOG_LEVEL=3 and TRANSFORMERS_VERBOSITY=error, unless the
  environment sets them;
- while TF_CPP_MIN_LOG_LEVEL is 1 or more, what TensorFlow writes to stderr
  during `import tensorflow` (before it reads that variable) goes to a
  temporary file, shown only if the import fails;
- Python log records (absl, `logging`, and Python warnings, which go to the
  `py.warnings` logger) reach the terminal when they come from tfqa's own
  code or are errors;
- tfqa's info lines are printed as plain sentences, without absl's
  "I1201 14:02:34.183306 140565746965376 training.py:230]" prefix (absl's
  --showprefixforinfo defaults to false; warnings and errors keep theirs).

`--verbosity=N` (or `-v N`; absl's flag: -1 warning, 0 info, 1 debug) on the
command line turns all of that off and applies level N to TensorFlow's C++
log and to transformers as well. TensorFlow logs as soon as it is imported,
so this is decided from the command line before flags are parsed: a
--verbosity read from a --flagfile sets the level of tfqa's messages only.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile

from absl import flags
from absl import logging as absl_logging

# absl verbosity -> TF_CPP_MIN_LOG_LEVEL (0 all, 1 warning+, 2 error+, 3 none).
_TF_CPP_LEVELS = {-3: "3", -2: "2", -1: "1"}
# absl verbosity -> TRANSFORMERS_VERBOSITY.
_TRANSFORMERS_LEVELS = {-3: "critical", -2: "error", -1: "warning", 0: "info"}
# Python loggers that have handlers of their own (TensorFlow adds one to
# `tensorflow` when it is imported before absl's handler is installed) or
# that log at import, before absl's handler exists.
_QUIET_LOGGERS = ("tensorflow", "tf2onnx", "py.warnings")
_TFQA_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def verbosity_from_argv(argv: list[str]) -> int | None:
  """The value of --verbosity (or -v, --v, -verbosity) in `argv`, or None.

  The last occurrence wins, as in absl; arguments after `--` are not flags.
  A value that is not an integer counts as absent (absl reports it).
  """
  value = None
  args = list(argv[1:])
  for i, arg in enumerate(args):
    if arg == "--":
      break
    if not arg.startswith("-"):
      continue
    name, has_value, text = arg.lstrip("-").partition("=")
    if name not in ("verbosity", "v"):
      continue
    if not has_value:
      text = args[i + 1] if i + 1 < len(args) else ""
    try:
      value = int(text)
    except ValueError:
      value = None
  return value


def configure(argv: list[str], environ=os.environ) -> int | None:
  """Sets up quiet (or --verbosity) logging; call before TensorFlow loads.

  Args:
    argv: the command line (sys.argv).
    environ: the environment to set TF_CPP_MIN_LOG_LEVEL and
      TRANSFORMERS_VERBOSITY in.

  Returns:
    The --verbosity found on the command line, or None (quiet).
  """
  verbosity = verbosity_from_argv(argv)
  if verbosity is None:
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in _QUIET_LOGGERS:
      logging.getLogger(name).setLevel(logging.ERROR)
    logging.captureWarnings(True)
    absl_logging.get_absl_handler().addFilter(_own_messages_and_errors)
    flags.FLAGS.set_default("showprefixforinfo", False)
  else:
    environ["TF_CPP_MIN_LOG_LEVEL"] = _TF_CPP_LEVELS.get(
        max(verbosity, -3), "0")
    environ["TRANSFORMERS_VERBOSITY"] = _TRANSFORMERS_LEVELS.get(
        max(verbosity, -3), "debug")
  if environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0"):
    capture_import_stderr("tensorflow")
  return verbosity


def _own_messages_and_errors(record: logging.LogRecord) -> bool:
  return (record.levelno >= logging.ERROR or
          os.path.abspath(record.pathname).startswith(_TFQA_DIR + os.sep))


def capture_import_stderr(name: str) -> None:
  """Runs the first import of module `name` with stderr on a temporary file.

  What the import writes to file descriptor 2 (C++ libraries included) is
  dropped, or written to stderr after all if the import raises.
  """
  if name in sys.modules or any(isinstance(finder, _CaptureImportStderr)
                                for finder in sys.meta_path):
    return
  sys.meta_path.insert(0, _CaptureImportStderr(name))


class _CaptureImportStderr(importlib.abc.MetaPathFinder):
  """Runs the first import of one module with file descriptor 2 on a file."""

  def __init__(self, name):
    self._name = name

  def find_spec(self, fullname, path, target=None):
    del path, target  # Unused.
    if fullname != self._name:
      return None
    # Find the real spec with this finder out of the way, then wrap its loader.
    sys.meta_path.remove(self)
    try:
      spec = importlib.util.find_spec(fullname)
    finally:
      sys.meta_path.insert(0, self)
    if spec is None or spec.loader is None:
      return spec
    spec.loader = _CapturingLoader(spec.loader, on_done=self._remove)
    return spec

  def _remove(self):
    if self in sys.meta_path:
      sys.meta_path.remove(self)


class _CapturingLoader(importlib.abc.Loader):
  """Delegates to a loader; stderr output of exec_module goes to a file."""

  def __init__(self, loader, *, on_done):
    self._loader, self._on_done = loader, on_done

  def __getattr__(self, name):
    return getattr(self._loader, name)

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    # The module keeps its own loader, as if imported plainly.
    module.__loader__ = module.__spec__.loader = self._loader
    with _stderr_to_temporary_file() as captured:
      try:
        self._loader.exec_module(module)
      except BaseException:
        captured.failed = True
        raise
    self._on_done()


@contextlib.contextmanager
def _stderr_to_temporary_file():
  """Points file descriptor 2 at a temporary file; replays it on failure."""

  class Captured:
    failed = False

  captured = Captured()
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as f:
    os.dup2(f.fileno(), 2)
    try:
      yield captured
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      if captured.failed:
        f.seek(0)
        sys.stderr.write(f.read().decode("utf-8", "replace"))
        sys.stderr.flush()
