"""Atomic publishing of export directories, and recovery after an export that was killed."""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable

from absl import logging

from tfqa import errors
from tfqa.layout import exportdir
from tfqa.layout import fs
from tfqa.layout import rundir

# Staging (".tmp-NAME-PID") and replaced (".old-NAME-PID") directories.
_LEFTOVER_REGEX = re.compile(r"\.(tmp|old)-(.+)-(\d+)")


@dataclasses.dataclass(frozen=True)
class Publisher:
  """Renames staged directories into place; its `rename` is the seam for faults.

  Tests and tools/chaos.py pass another `rename` (one that dies between the
  two renames of a replacement, say) instead of patching this module.
  """

  # (source, destination), as os.rename; fs.rename works on any file system
  # (a copy and a delete on gs://, so not atomic there).
  rename: Callable[[str, str], None] = fs.rename

  def publish(self, staged: str, final: str, *, overwrite: bool) -> None:
    """Renames `staged` to `final`; replaces an existing `final` if allowed.

    A replacement renames the old directory aside, renames the new one in
    and only then deletes the old one, so `final` is always one whole
    version.

    Raises:
      ValueError: `final` exists and `overwrite` is False.
    """
    if not fs.exists(final):
      self.rename(staged, final)
      return
    if not overwrite:
      raise errors.ArgumentNamingError(
          f"{errors.literal(final)} appeared while exporting (another "
          f"export?); it was left as it is. Pass {{overwrite}}=True to "
          f"replace it.", ["overwrite"])
    parent, name = os.path.split(final)
    # Not all digits, so TF Serving ignores it too.
    aside = os.path.join(parent, f".old-{name}-{os.getpid()}")
    self.rename(final, aside)
    try:
      self.rename(staged, final)
    except BaseException:
      fs.rename(aside, final)
      raise
    fs.rmtree(aside)

  def publish_portable(self, staged_portable: str, export_dir: str) -> None:
    """Moves the staged onnx/ and tflite/ in; drops those an export lacks.

    They always describe the newest export, like pretrained/.
    """
    for name in (exportdir.ONNX_SUBDIR, exportdir.TFLITE_SUBDIR):
      staged, final = (os.path.join(staged_portable, name),
                       os.path.join(export_dir, name))
      if fs.isdir(staged):
        self.publish(staged, final, overwrite=True)
      else:
        fs.rmtree(final)


def recover_interrupted(export_dir: str, models_dir: str) -> list[str]:
  """Cleans up after exports that were killed; returns what it did.

  A killed export leaves its hidden staging directories behind, and one
  killed inside `Publisher.publish` between its two renames leaves the previous
  directory renamed aside with nothing in its place. Directories of a
  process that is still running (another export) are left alone. An aside
  directory whose place is empty is renamed back (so the previous export is
  whole again); every other leftover is deleted.
  """
  actions = []
  for parent in (export_dir, models_dir):
    if not fs.isdir(parent):
      continue
    for name in fs.listdir(parent):
      match = _LEFTOVER_REGEX.fullmatch(name)
      if match is None or rundir.process_alive(int(match.group(3))):
        continue
      path = os.path.join(parent, name)
      original = os.path.join(parent, match.group(2))
      if match.group(1) == "old" and not fs.exists(original):
        fs.rename(path, original)
        actions.append(f"restored {original}")
      else:
        fs.rmtree(path)
        actions.append(f"removed {path}")
  for action in actions:
    logging.warning("Interrupted export: %s", action)
  return actions


def refuse_existing(version_dir: str, models_dir: str) -> None:
  """Raises a ValueError when the version directory exists already."""
  if fs.exists(version_dir):
    raise errors.ArgumentNamingError(
        f"{errors.literal(version_dir)} already exists and is never "
        f"overwritten by default. Pass {{overwrite}}=True (--overwrite) to "
        f"replace it, or leave the version unset to write version "
        f"{exportdir.next_version(models_dir)}.", ["overwrite"])
