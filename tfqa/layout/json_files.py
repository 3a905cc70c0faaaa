"""Atomic file writes: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import json

from tfqa.layout import fs


def atomic_write_text(path: str, text: str) -> None:
  """Writes `text` to `path` whole (fs.write_text: temp file, rename)."""
  fs.write_text(path, text)


def atomic_write_json(path: str, obj) -> None:
  """Writes `obj` as pretty UTF-8 JSON; refuses NaN/inf (invalid JSON)."""
  fs.write_json(path, obj)


def read_json(path: str, *, what: str):
  """Reads a JSON file, with errors that name the file and the position.

  Raises:
    ValueError: unreadable, invalid UTF-8 or invalid JSON.
  """
  try:
    raw = fs.read_bytes(path)
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

