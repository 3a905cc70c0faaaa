"""Integrity checks on what tfqa reads back: paths kept inside their directory, exports against their manifest."""

from __future__ import annotations

import os


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
  joined = os.path.normpath(os.path.join(root, path))
  real_root = os.path.realpath(root)
  for candidate, base in ((joined, os.path.normpath(os.path.abspath(root))),
                          (os.path.realpath(joined), real_root)):
    absolute = os.path.abspath(candidate)
    if os.path.commonpath([absolute, base]) != base:
      raise PathEscapeError(
          f"{source} names {path!r}, which is outside {root}; refused (a "
          f"damaged or planted file). Paths in it must stay inside that "
          f"directory. Restore the file or delete it.")
  return joined


def verify_export(export_dir: str) -> dict:
  """Checks an export's SavedModel version and pretrained/ against manifest.json.

  Every file listed in the manifest must exist with the recorded SHA-256,
  and no file may be unlisted. Nothing is loaded (no graph is run).

  Returns:
    The manifest.

  Raises:
    ManifestMismatchError (a ValueError): naming every missing, modified or
      unlisted file, or a manifest path that leaves `export_dir`.
  """
  # Imported here: checkpointing imports this module and export imports
  # checkpointing.
  from tfqa import export  # pylint: disable=import-outside-toplevel
  from tfqa import predict  # pylint: disable=import-outside-toplevel

  manifest = export.read_manifest(export_dir)
  manifest_path = os.path.join(export_dir, export.MANIFEST_FILE)
  try:
    trees = {kind: contained_path(export_dir, manifest["paths"][kind],
                                  source=manifest_path)
             for kind in ("saved_model", "pretrained")}
    expected = {kind: dict(manifest["sha256"][kind]) for kind in trees}
  except (KeyError, TypeError, PathEscapeError) as e:
    raise predict.ManifestMismatchError(
        f"{manifest_path} is not a valid tfqa export manifest: "
        f"{type(e).__name__}: {e}") from None
  problems = []
  for kind, directory in trees.items():
    actual = export.file_digests(directory) if os.path.isdir(directory) else {}
    problems += file_problems(os.path.relpath(directory, export_dir),
                              expected[kind], actual)
  if problems:
    raise predict.ManifestMismatchError(
        f"{export_dir} does not match {manifest_path}: "
        + "; ".join(problems) + ". Re-export the model (tfqa_export) or "
        "restore the original files.")
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
