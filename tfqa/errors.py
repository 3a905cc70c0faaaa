"""Errors naming an argument, the value found and what was expected: worded for the Python API, or for a tool's flags by a table.

The library names its arguments (Keras style: "Invalid value for argument
`doc_stride`. Received: doc_stride=100. Expected ..."). A tool's run_tool
words the same error in its flags ("Invalid value for flag --doc_stride.
Received: --doc_stride=100. Expected ...") from a table argument -> flag;
an argument not in the table keeps the API's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence

# A table argument name -> how a tool names it ("--doc_stride", "DATA_FILE").
Labels = Mapping[str, str]


class ArgumentError(ValueError):
  """An argument whose value is wrong.

  Worded "Invalid value for argument `name`. Received: name=value{note}.
  {expected}", where `note` may name other arguments with their values
  ("with max_seq_length=128"): each of `others` is shown as name=value
  after " with ".

  Attributes:
    name: the argument.
    value: the value received.
    expected: what was expected, a sentence ("Expected a positive
      integer."), or more.
    others: (name, value) of other arguments the value was checked against.
    note: words after the received values (", but the model embeds ...").
  """

  def __init__(self, name: str, value, expected: str, *,
               others: Sequence[tuple[str, object]] = (), note: str = ""):
    self.name = name
    self.value = value
    self.expected = expected
    self.others = tuple(others)
    self.note = note
    super().__init__(self.worded())

  def worded(self, labels: Labels | None = None) -> str:
    """The message, naming each argument in `labels` by its label."""
    labels = labels or {}
    head = (f"flag {labels[self.name]}" if self.name in labels else
            f"argument `{self.name}`")
    received = _assignment(self.name, self.value, labels)
    if self.others:
      received += " with " + ", ".join(
          _assignment(name, value, labels) for name, value in self.others)
    return (f"Invalid value for {head}. Received: {received}{self.note}. "
            f"{self.expected}")


class ExclusiveArgumentsError(ValueError):
  """Exactly one of several arguments was expected.

  Worded "Expected exactly one of `a` and `b`. Received: a=..., b=....
  {advice}".
  """

  def __init__(self, values: Mapping[str, object], advice: str):
    self.values = dict(values)
    self.advice = advice
    super().__init__(self.worded())

  def worded(self, labels: Labels | None = None) -> str:
    labels = labels or {}
    names = " and ".join(labels.get(name, f"`{name}`") for name in self.values)
    received = ", ".join(_assignment(name, value, labels)
                         for name, value in self.values.items())
    return (f"Expected exactly one of {names}. Received: {received}. "
            f"{self.advice}")


class MissingArgumentError(ValueError):
  """An argument needs another that is missing.

  Worded "`a`='x' needs `b`. {advice}".
  """

  def __init__(self, name: str, value, needed: str, advice: str):
    self.name = name
    self.value = value
    self.needed = needed
    self.advice = advice
    super().__init__(self.worded())

  def worded(self, labels: Labels | None = None) -> str:
    labels = labels or {}
    given = labels.get(self.name, f"`{self.name}`")
    needed = labels.get(self.needed, f"`{self.needed}`")
    return f"{given}={self.value!r} needs {needed}. {self.advice}"


# Errors that word themselves for a tool (worded(labels)).
WORDED_ERRORS = (ArgumentError, ExclusiveArgumentsError, MissingArgumentError)


def _assignment(name: str, value, labels: Labels) -> str:
  return f"{labels.get(name, name)}={value!r}"
