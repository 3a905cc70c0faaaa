"""Durations written as people write them ("90m", "1h30m", "45s", "2.5h"): parsed to seconds."""

from __future__ import annotations

import re

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")
EXAMPLES = "45m, 1h30m, 2.5h or 900s"


def seconds(text: str) -> float:
  """Seconds in `text`: parts of hours, minutes and seconds, in that order.

  Raises:
    ValueError: `text` is empty, has anything else, repeats or misorders a
      unit, or comes to zero.
  """
  if not isinstance(text, str):
    raise ValueError(f"not a string: {text!r}")
  parts = _PART.findall(text.strip())
  units = [unit for _, unit in parts]
  if (not parts or "".join(n + u for n, u in parts) != text.strip() or
      units != sorted(units, key="hms".index) or len(set(units)) < len(units)):
    raise ValueError(f"not a duration: {text!r}")
  total = sum(float(number) * _UNITS[unit] for number, unit in parts)
  if total <= 0:
    raise ValueError(f"not a positive duration: {text!r}")
  return total


def describe(total_seconds: float) -> str:
  """A duration as "1h02m03s", "4m05s" or "7.5s", for messages."""
  if total_seconds < 60:
    return f"{total_seconds:.1f}s"
  whole = round(total_seconds)
  hours, rest = divmod(whole, 3600)
  minutes, secs = divmod(rest, 60)
  return (f"{hours}h{minutes:02d}m{secs:02d}s" if hours else
          f"{minutes}m{secs:02d}s")
