"""The comments above a config dataclass's fields: each field's documentation, and its flag's help."""

from __future__ import annotations

import dataclasses
import inspect
import re


# A dataclass field line: `name: type` or `name: type = default`.
_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:\s*[^=]+(=.*)?$")


def field_comments(cls: type) -> dict[str, str]:
  """Each field's comment (the `#` lines right above it), joined into one line.

  Raises:
    ValueError: when a field has no comment (its flag would have no help).
  """
  comments, pending = {}, []
  names = {f.name for f in dataclasses.fields(cls)}
  for line in inspect.getsource(cls).splitlines()[1:]:
    stripped = line.strip()
    if stripped.startswith("#"):
      pending.append(stripped.lstrip("#").strip())
      continue
    match = _FIELD_LINE.match(line)
    if match and match.group(1) in names:
      comments[match.group(1)] = " ".join(pending)
    pending = []
  missing = sorted(names - {n for n, text in comments.items() if text})
  if missing:
    raise ValueError(f"{cls.__name__}: fields without a comment above them: "
                     f"{missing}. Every field needs one (it is the flag's "
                     f"help).")
  return comments
