"""The pieces the SQuAD loader's checks and messages are made of: JSON value predicates, bounded reprs, paths, plurals."""

from __future__ import annotations

import itertools
import reprlib
from typing import Any

# Longest repr of an offending value quoted in an error message.
MAX_REPR_CHARS = 80


class _ShortRepr(reprlib.Repr):
  """Bounded repr for error messages: a few items, a few levels, short text."""

  def __init__(self):
    super().__init__()
    self.maxstring = self.maxother = MAX_REPR_CHARS
    self.maxlist = self.maxtuple = self.maxdict = 4
    self.maxlevel = 3

  def repr_dict(self, x, level):
    # reprlib sorts keys; keep the file's order so the value reads as written.
    if not x:
      return "{}"
    if level <= 0:
      return "{...}"
    pieces = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
              for k, v in itertools.islice(x.items(), self.maxdict)]
    if len(x) > self.maxdict:
      pieces.append("...")
    return "{" + ", ".join(pieces) + "}"


_REPR = _ShortRepr()


class Missing:
  """Marks a key absent from a JSON object; reads well in error messages."""

  def __repr__(self):
    return "nothing (the key is missing)"


MISSING = Missing()


def join(path: str, key: str) -> str:
  """The JSON path of `key` inside `path` ("a.b")."""
  return f"{path}.{key}" if path else key


def short_repr(value: Any) -> str:
  """A repr of `value` short enough to quote in an error message."""
  text = _REPR.repr(value)
  if len(text) > MAX_REPR_CHARS:
    text = text[:MAX_REPR_CHARS - 3] + "..."
  return text


def plural(count: int, noun: str) -> str:
  """"1 answer", "2 answers"."""
  return f"{count} {noun}" + ("" if count == 1 else "s")


def is_encodable(text: str) -> bool:
  """Whether `text` encodes as UTF-8 (no lone surrogates)."""
  try:
    text.encode("utf-8")
  except UnicodeEncodeError:
    return False
  return True


def is_str(value: Any) -> bool:
  return isinstance(value, str)


def is_nonempty_str(value: Any) -> bool:
  return isinstance(value, str) and bool(value)


def is_nonblank_str(value: Any) -> bool:
  return isinstance(value, str) and bool(value.strip())


def is_list(value: Any) -> bool:
  return isinstance(value, list)


def is_bool(value: Any) -> bool:
  return isinstance(value, bool)


def is_offset(value: Any) -> bool:
  """A non-negative int that is not a bool."""
  # bool is an int subclass; `true` is not an offset.
  return isinstance(value, int) and not isinstance(value, bool) and value >= 0
