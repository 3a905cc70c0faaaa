"""Integrity checks on what tfqa reads back: paths kept inside their directory, export files against their manifest's digests."""

from __future__ import annotations

import os
import posixpath
from typing import Sequence

from tfqa.layout import exportdir
from tfqa.layout import fs


class PathEscapeError(ValueError):
  """A path read from a file points outside the directory it must stay in."""


def contained_path(root: str, path: str, *, source: str) -> str:
  """`path` (relative to `root`, or absolute) if it stays inside `root`.

  Paths read from files that tfqa wrote (the `checkpoint` state file, an
  export's manifest.json) name things inside the run or export directory.
  A damaged or planted file must not make tfqa read, load or delete anything
  elsewhere, so absolute paths outside `root`, `..` that climbs out of it
  and symlinks that lead out are refused.

  Args:
    root: the directory the path must stay in.
    path: the path as read.
    source: the file it was read from (for the message).

  Returns:
    The path joined to `root` (normalised).

  Raises:
    PathEscapeError: naming `source`, the path and `root`.
  """
  if not isinstance(path, str) or not path or "\0" in path:
    raise PathEscapeError(f"{source}: invalid path {path!r}; expected a "
                          f"path inside {root}.")
  if fs.is_url(root):
    # No symlinks there; normpath would fold "gs://" into "gs:/".
    scheme, _, inside = root.partition("://")
    relative = path.partition("://")[2] if fs.is_url(path) else path
    joined = posixpath.normpath(posixpath.join("/" + inside, relative))
    checks = ((joined, posixpath.normpath("/" + inside)),)
  else:
    joined = os.path.normpath(os.path.join(root, path))
    checks = ((joined, os.path.normpath(fs.abspath(root))),
              (fs.realpath(joined), fs.realpath(root)))
  for candidate, base in checks:
    absolute = fs.abspath(candidate)
    if os.path.commonpath([absolute, base]) != base:
      raise PathEscapeError(
          f"{source} names {path!r}, which is outside {root}; refused (a "
          f"damaged or planted file). Paths in it must stay inside that "
          f"directory. Restore the file or delete it.")
  return f"{scheme}:/{joined}" if fs.is_url(root) else joined


class ManifestMismatchError(ValueError):
  """An export's files differ from what its manifest.json recorded."""


# The parts of an export whose directories manifest["paths"] names; other
# parts (onnx, tflite) are the directory of that name in the export.
_PATH_PARTS = ("saved_model", "pretrained")


def verify_digests(export_dir: str, *,
                   parts: Sequence[str] = _PATH_PARTS,
                   subject: str | None = None) -> dict:
  """Checks files of an export against the SHA-256 digests of its manifest.

  Every file listed for a part must exist with the recorded SHA-256, and no
  file may be unlisted. Nothing is loaded (no graph is run).

  Args:
    export_dir: a directory written by tfqa_export.
    parts: the manifest's "sha256" keys to check ("saved_model",
      "pretrained", "onnx", "tflite"), or "PART/FILE" for one file.
    subject: the directory or file about to be loaded: the message says
      "Refusing to load SUBJECT" and names files relative to it. None:
      the whole export; files are named relative to `export_dir`.

  Returns:
    The manifest.

  Raises:
    ManifestMismatchError (a ValueError): naming every missing, modified or
      unlisted file, or a manifest path that leaves `export_dir`.
  """
  manifest = exportdir.read_manifest(export_dir)
  manifest_path = os.path.join(export_dir, exportdir.MANIFEST_FILE)
  base = export_dir if subject is None else (
      subject if fs.isdir(subject) else os.path.dirname(subject))
  problems = []
  for part in parts:
    part, _, only = part.partition("/")
    try:
      directory = contained_path(
          export_dir, manifest["paths"][part] if part in _PATH_PARTS
          else part, source=manifest_path)
      expected = dict(manifest["sha256"].get(part, {}))
    except (KeyError, TypeError, AttributeError, PathEscapeError) as e:
      raise ManifestMismatchError(
          f"{manifest_path} is not a valid tfqa export manifest: "
          f"{type(e).__name__}: {e}") from None
    if only:
      expected = {only: expected[only]} if only in expected else {}
      path = os.path.join(directory, only)
      actual = ({only: exportdir.file_digest(path)}
                if fs.isfile(path) else {})
    else:
      actual = (exportdir.file_digests(directory)
                if fs.isdir(directory) else {})
    prefix = os.path.relpath(directory, base)
    problems += file_problems("" if prefix == "." else prefix, expected,
                              actual)
  if problems:
    what = (f"{export_dir} does not match" if subject is None else
            f"Refusing to load {subject}: its files do not match")
    raise ManifestMismatchError(
        f"{what} {manifest_path}: " + "; ".join(problems) + ". Re-export "
        "the model (tfqa_export) or restore the original files.")
  return manifest


def file_problems(prefix: str, expected: dict[str, str],
                  actual: dict[str, str]) -> list[str]:
  """One line per missing, modified or unlisted file ('PREFIX/NAME ...').

  With an empty prefix the lines name the files alone ('NAME ...').
  """
  def name(relative):
    return f"{prefix}/{relative}" if prefix else relative

  return (
      [f"{name(n)} is missing" for n in sorted(set(expected) - set(actual))] +
      [f"{name(n)} was modified (SHA-256 {actual[n][:12]}…, manifest "
       f"{str(expected[n])[:12]}…)"
       for n in sorted(set(expected) & set(actual))
       if expected[n] != actual[n]] +
      [f"{name(n)} is not in the manifest"
       for n in sorted(set(actual) - set(expected))])
