"""Paths given to tfqa, checked for their kind: one check names the argument, what is there and what was expected.

Relative paths are taken from the working directory, absolute ones from the
root; nothing else differs. No TensorFlow import: checks run in a fraction
of a second, before any work.
"""

from __future__ import annotations

import codecs
import os
import stat
from typing import Sequence

from tfqa import errors
from tfqa.layout import rundir

# Kinds of path `check_path` tells apart.
FILE = "file"  # an existing, readable, non-empty regular file
JSON_FILE = "json_file"  # a FILE whose text starts with a JSON object
DIRECTORY = "directory"  # an existing directory
RUN_DIRECTORY = "run_directory"  # a DIRECTORY holding run_config.json
FILE_OR_DIRECTORY = "file_or_directory"  # either, as long as it exists
CHECKPOINT = "checkpoint"  # a checkpoint prefix: PREFIX.index exists
OUTPUT_DIRECTORY = "output_directory"  # a directory, or nothing yet
OUTPUT_FILE = "output_file"  # a file, or nothing yet (not a directory)
KINDS = (FILE, JSON_FILE, DIRECTORY, RUN_DIRECTORY, FILE_OR_DIRECTORY,
         CHECKPOINT, OUTPUT_DIRECTORY, OUTPUT_FILE)

# How far into a JSON file to look for its first non-blank character.
_SNIFF_BYTES = 1 << 16
_SHOWN = 3  # names listed when telling what a directory holds


class PathError(errors.ArgumentNamingError):
  """A path of the wrong kind: names the argument, what is there, what was expected."""


def path_error(argument: str, path: str, problem: str, *,
               refers_to: Sequence[str] = ()) -> PathError:
  """"{argument}={path} {problem}", naming `argument` as the caller words it.

  Args:
    argument: the library argument that gave the path ("train_file"), or
      words for a path no argument gave ("the run's data.eval_file").
    path: the path as given.
    problem: what is wrong and what was expected, as a template
      (errors.literal for plain text) naming the arguments in `refers_to`.
  """
  named = argument.isidentifier()
  head = f"{{{argument}}}" if named else errors.literal(argument)
  return PathError(f"{head}={errors.literal(path)} {problem}",
                   [argument] * named + list(refers_to))


def check_path(path: str, kind: str, *, argument: str, what: str,
               choices: Sequence[str] = (),
               refers_to: Sequence[str] = ()) -> None:
  """Raises PathError unless `path` is of `kind`.

  URLs (gs://..., read through tf.io.gfile) are left to the reader.

  Args:
    path: the path as given.
    kind: one of KINDS.
    argument: the argument that gave it ("train_file", "data_file"); a
      tool names it by its flag (cli.common.run_tool).
    what: what was expected there, e.g. "a SQuAD JSON file"; a template
      naming the arguments in `refers_to`, if any.
    choices: existing alternatives to name when `path` is not one (e.g. the
      run's checkpoints).
    refers_to: arguments `what` names.

  Raises:
    PathError: "{argument}={path} {what is there}; expected {what}."
    ValueError: an unknown `kind`.
  """
  if kind not in KINDS:
    raise errors.ArgumentError("kind", kind, f"Expected one of {KINDS}.")
  if "://" in path:
    return
  found = _problem(path, kind)
  if found is None:
    return
  if not refers_to:
    what = errors.literal(what)
  problem = f"{errors.literal(found)}; expected {what}."
  if choices:
    problem += errors.literal(f" Existing ones: {', '.join(choices)}.")
  raise path_error(argument, path, problem, refers_to=refers_to)


def _problem(path, kind):
  """What is wrong with `path` for `kind`, as a phrase; None if nothing."""
  if not path:
    return "is empty"
  if kind == CHECKPOINT and os.path.isfile(path + ".index"):
    return None  # A prefix: no file has that name itself.
  try:
    mode = os.stat(path).st_mode
  except FileNotFoundError:
    # Output paths are created (but not a directory named "~"); inputs must
    # exist.
    if kind in (OUTPUT_DIRECTORY, OUTPUT_FILE) and not _tilde(path):
      return None
    return _missing(path, kind)
  except NotADirectoryError:
    return _missing(path, kind)
  except OSError as e:
    return f"cannot be read ({e.strerror})"
  if kind in (FILE, JSON_FILE):
    return _file_problem(path, mode, json_file=kind == JSON_FILE)
  if kind in (DIRECTORY, OUTPUT_DIRECTORY, RUN_DIRECTORY):
    if not stat.S_ISDIR(mode):
      return "is a file" if stat.S_ISREG(mode) else "is not a directory"
    if kind == RUN_DIRECTORY and not os.path.isfile(
        rundir.run_config_path(path)):
      return _not_a_run(path)
    return None
  if kind == OUTPUT_FILE:
    return "is a directory" if stat.S_ISDIR(mode) else None
  if kind == CHECKPOINT:
    return _checkpoint_problem(path, mode)
  return None  # FILE_OR_DIRECTORY


def _missing(path, kind):
  """'does not exist', with the reason when a parent is a file."""
  blocker = _file_ancestor(path)
  if blocker:
    verb = ("cannot be created" if kind in (OUTPUT_DIRECTORY, OUTPUT_FILE)
            else "does not exist")
    return f"{verb}: {blocker} is a file, not a directory"
  if _tilde(path):
    verb = ("would be created in a directory named '~'"
            if kind in (OUTPUT_DIRECTORY, OUTPUT_FILE) else "does not exist")
    return (f"{verb}: the shell does not expand ~ after '=' (write "
            f"$HOME/{path[2:]}, or the flag and the path apart)")
  if kind == CHECKPOINT:
    return f"does not exist (there is no {path}.index)"
  if not os.path.isabs(path):
    return f"does not exist (relative to the working directory {os.getcwd()})"
  return "does not exist"


def _tilde(path):
  """Whether `path` starts with a '~' the shell left alone (absl does too)."""
  return path.split(os.sep, 1)[0] == "~"


def _file_ancestor(path):
  """The nearest existing ancestor of `path`, if it is not a directory.

  Named as `path` names it (relative stays relative).
  """
  parent = os.path.dirname(os.path.normpath(path))
  while parent and not os.path.lexists(parent):
    parent = os.path.dirname(parent)
  # "" is the working directory.
  return None if not parent or os.path.isdir(parent) else parent


def _file_problem(path, mode, *, json_file):
  if stat.S_ISDIR(mode):
    inside = sorted(name for name in _names(path)
                    if name.endswith(".json"))[:_SHOWN]
    return "is a directory" + (
        f" (holding {', '.join(os.path.join(path, n) for n in inside)})"
        if inside and json_file else "")
  if not stat.S_ISREG(mode):
    return "is not a regular file"
  if not os.access(path, os.R_OK):
    return "is not readable (permission denied)"
  if os.path.getsize(path) == 0:
    return "is empty (0 bytes)"
  return _json_problem(path) if json_file else None


def _json_problem(path):
  """Whether the file starts like a JSON object, looking at its first bytes."""
  with open(path, "rb") as f:
    head = f.read(_SNIFF_BYTES)
  text = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
  if not text:
    return ("holds only blank space" if len(head) < _SNIFF_BYTES else
            f"starts with more than {_SNIFF_BYTES} bytes of blank space")
  if text.startswith(b"{"):
    return None
  start = text[:16]
  try:
    shown = start.decode("utf-8")
  except UnicodeDecodeError:
    shown = None
  if shown is None or not shown.isprintable():
    return (f"is not JSON text: it starts with the bytes "
            f"{start[:8].hex(' ')}")
  return f"is not a JSON object: it starts with {shown!r}"


def _not_a_run(path):
  runs = sorted(name for name in _names(path)
                if os.path.isfile(rundir.run_config_path(
                    os.path.join(path, name))))[:_SHOWN]
  if runs:
    return (f"holds no {rundir.RUN_CONFIG_FILE} (runs inside it: "
            f"{', '.join(os.path.join(path, r) for r in runs)})")
  return f"holds no {rundir.RUN_CONFIG_FILE}"


def _names(directory):
  """The directory's entries, for messages; none when it cannot be listed."""
  try:
    return os.listdir(directory)
  except OSError:
    return []


def _checkpoint_problem(path, mode):
  if stat.S_ISDIR(mode):
    return "is a directory, not a checkpoint prefix"
  for suffix in (".index", ".data-"):
    if suffix in os.path.basename(path):
      return (f"is one file of the checkpoint "
              f"{path[:path.rindex(suffix)]} (pass that prefix)")
  return f"is not a checkpoint (there is no {path}.index)"
