"""Atomic file writes: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import json
import os
import tempfile


def atomic_write_text(path: str, text: str) -> None:
  """Writes `text` to `path` through a temp file, fsync and rename."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
  try:
    # mkstemp makes the file private (0600); give it the mode open() would,
    # so that a server or reader running as another user can read it.
    os.fchmod(fd, _default_file_mode())
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _default_file_mode() -> int:
  umask = os.umask(0)
  os.umask(umask)
  return 0o666 & ~umask


def atomic_write_json(path: str, obj) -> None:
  """Writes `obj` as pretty UTF-8 JSON; refuses NaN/inf (invalid JSON)."""
  atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False,
                                     allow_nan=False) + "\n")


def read_json(path: str, *, what: str):
  """Reads a JSON file, with errors that name the file and the position.

  Raises:
    ValueError: unreadable, invalid UTF-8 or invalid JSON.
  """
  try:
    with open(path, "rb") as f:
      raw = f.read()
    return json.loads(raw.decode("utf-8"))
  except FileNotFoundError:
    raise
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: {what} is not valid UTF-8 (byte {e.start}).") \
        from None
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: {what} is not valid JSON: {e.msg} at line "
                     f"{e.lineno} column {e.colno}.") from None
  except RecursionError:
    raise ValueError(f"{path}: {what} is not valid: arrays/objects nested "
                     f"too deeply to parse.") from None

