"""Checks shared by the config dataclasses' __post_init__: Keras-style errors naming the argument, the value received and the one expected."""

from __future__ import annotations

from tfqa import errors


def require_positive(config, *names):
  """Refuses fields of `config` that are not positive integers."""
  for name in names:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
      raise errors.ArgumentError(name, value, "Expected a positive integer.")


def require_bool(config, *names):
  """Refuses fields of `config` that are not bools."""
  for name in names:
    value = getattr(config, name)
    if not isinstance(value, bool):
      raise errors.ArgumentError(name, value, "Expected a bool.")


def require_in(config, name, allowed):
  """Refuses a field of `config` whose value is not one of `allowed`."""
  value = getattr(config, name)
  if value not in allowed:
    raise errors.ArgumentError(name, value, f"Expected one of {allowed}.")


def is_int(value) -> bool:
  """An int that is not a bool."""
  return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
  """An int or float that is not a bool."""
  return isinstance(value, (int, float)) and not isinstance(value, bool)
