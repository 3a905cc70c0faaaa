"""What every tfqa entry point shares: Keras 2 and quiet logs, grouped --help, flag parsing."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from typing import Callable

from absl import app
from absl import flags

from tfqa.cli import quiet

# transformers' TF models need Keras 2. Set before TensorFlow is imported so
# that `tf.keras` in user callbacks resolves to tf_keras too.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# Other libraries' messages hidden unless --verbosity is on the command line;
# also decided before TensorFlow is imported (see quiet.py).
quiet.configure(sys.argv)

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
             describe: Callable[[Exception], str | None] | None = None
             ) -> None:
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
  """
  prog = doc.split(":", 1)[0].strip()

  def guarded(argv):
    try:
      return main(argv)
    except app.UsageError as e:
      sys.exit(f"{prog}: error: {e} (`{prog} --help` lists the flags)")
    except REPORTED_ERRORS as e:
      message = (describe(e) if describe else None) or str(e)
      sys.exit(flag_wording(f"{prog}: error: {message}"))
    except SystemExit as e:
      if isinstance(e.code, str):  # an error message: say it in flags
        raise SystemExit(flag_wording(e.code)) from None
      raise

  app.run(guarded, flags_parser=parser_with_grouped_help(doc, groups))


def flag_wording(message: str) -> str:
  """A library error in the words of this tool's command line.

  The library names its arguments (Keras style: "Invalid value for argument
  `doc_stride`. Received: doc_stride=100."); where an argument is one of
  this tool's flags, the user reads the flag: "Invalid value for flag
  --doc_stride. Received: --doc_stride=100.".
  """
  def as_flag(match, before=""):
    name = match.group(1)
    return f"{before}--{name}" if name in FLAGS else match.group(0)

  message = re.sub(r"argument `(\w+)`", lambda m: as_flag(m, "flag "),
                   message)
  message = re.sub(r"`(\w+)`", as_flag, message)
  return re.sub(r"(?<![-\w./])(\w+)(?==)", as_flag, message)


def present_flags(names) -> list[str]:
  """The flags among `names` that were set on the command line."""
  return [name for name in names if FLAGS[name].present]
