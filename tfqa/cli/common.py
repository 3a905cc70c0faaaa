"""What every tfqa entry point shares: Keras 2 and quiet logs, grouped --help, flag parsing."""

from __future__ import annotations

from collections.abc import Mapping
import os
import sys
import textwrap
from typing import Callable

from absl import app
from absl import flags

from tfqa import errors
from tfqa.cli import quiet

# transformers' TF models need Keras 2. Set before TensorFlow is imported so
# that `tf.keras` in user callbacks resolves to tf_keras too.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# Other libraries' messages hidden unless --verbosity is on the command line;
# also decided before TensorFlow is imported (see quiet.py).
quiet.configure(sys.argv)


def hide_pytorch() -> None:
  """Keeps transformers from importing PyTorch (USE_TORCH=0, unless the
  environment says otherwise), for entry points that run no PyTorch model.

  Where torch is installed, transformers imports it at its own import:
  seconds at every start of a tool that never uses it. Call before
  transformers is imported. tfqa_export does not: it checks the export's
  PyTorch reload when torch is installed.
  """
  os.environ.setdefault("USE_TORCH", "0")

FLAGS = flags.FLAGS
_HELP_ARGS = ("--help", "-h", "--helpshort", "-?", "--helpfull")


def grouped_help(doc: str, groups: dict[str, list[str]]) -> str:
  """Usage text: the docstring, then each group's flags with one-line help."""
  lines = [doc.strip(), ""]
  for title, names in groups.items():
    lines.append(f"{title}:")
    for name in names:
      flag = FLAGS[name]
      default = "" if flag.default is None else f" (default: {flag.default!r})"
      summary = flag.help.strip().split("\n")[0]
      lines.append(f"  --{name}{default}")
      lines.extend("      " + part for part in textwrap.wrap(summary, 72))
    lines.append("")
  lines.append("Any flag may also come from a file: --flagfile=PATH.")
  lines.append("Other libraries' messages (TensorFlow, transformers, tf2onnx) "
               "are hidden;\n--verbosity=0 (info) or 1 (debug) on the "
               "command line shows them.")
  return "\n".join(lines)


def parser_with_grouped_help(doc: str, groups: dict[str, list[str]]):
  """An absl flags_parser printing grouped help for --help and -h.

  A flag that cannot be parsed (unknown name, bad value, missing flagfile)
  ends the program with a one-line error naming the tool and the flag, as
  run_tool's usage errors do, instead of a traceback.
  """
  prog = doc.split(":", 1)[0].strip()

  def parse(argv):
    if any(arg in _HELP_ARGS for arg in argv[1:]):
      print(grouped_help(doc, groups))
      sys.exit(0)
    try:
      return FLAGS(argv)
    except flags.Error as e:
      sys.exit(f"{prog}: error: {e} (`{prog} --help` lists the flags)")

  return parse


# What a tool reports in one line (exit status 1) instead of a traceback:
# a wrong input (ValueError; paths.PathError is one), a missing optional
# extra (ImportError), a file that cannot be read or written (OSError).
REPORTED_ERRORS = (ValueError, ImportError, OSError)


def run_tool(main, doc: str, groups: dict[str, list[str]], *,
             describe: Callable[[Exception], str | None] | None = None,
             labels: Mapping[str, str] | None = None) -> None:
  """Runs a tool's main under absl with grouped --help: every tool's one
  catch-and-exit policy.

  A usage mistake (app.UsageError: a missing or contradictory flag, stray
  or missing arguments) ends the program with one line on stderr naming
  the tool, and exit status 1, instead of absl's full usage text; so does
  one of REPORTED_ERRORS, in the words of the tool's flags.

  Args:
    main: the tool's main(argv).
    doc: its usage text ("tool_name: what it does ...").
    groups: --help groups (title -> flag names).
    describe: the tool's own wording of an error (what is safe, what to
      do), or None for the error's message.
    labels: library argument -> how this tool names it, beyond the flags
      named as the argument (e.g. "data_file": "DATA_FILE").
  """
  prog = doc.split(":", 1)[0].strip()

  def guarded(argv):
    try:
      return main(argv)
    except app.UsageError as e:
      sys.exit(f"{prog}: error: {e} (`{prog} --help` lists the flags)")
    except REPORTED_ERRORS as e:
      message = (describe(e) if describe else None) or flag_wording(
          e, flag_labels(labels))
      sys.exit(f"{prog}: error: {message}")

  app.run(guarded, flags_parser=parser_with_grouped_help(doc, groups))


def flag_labels(extra: Mapping[str, str] | None = None) -> dict[str, str]:
  """The table argument -> flag: every flag of this tool names the argument
  of its name ("doc_stride": "--doc_stride"), then `extra`."""
  return {**{name: f"--{name}" for name in FLAGS}, **(extra or {})}


def flag_wording(error: Exception, labels: Mapping[str, str]) -> str:
  """A library error in the words of this tool's command line: an error
  naming its arguments (errors.ArgumentNamingError) names them by `labels`
  ("Invalid value for flag --doc_stride. Received: --doc_stride=100.");
  any other says what it says."""
  if isinstance(error, errors.ArgumentNamingError):
    return error.worded(labels)
  return str(error)


def present_flags(names) -> list[str]:
  """The flags among `names` that were set on the command line."""
  return [name for name in names if FLAGS[name].present]
