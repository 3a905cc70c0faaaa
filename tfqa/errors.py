"""Errors that name arguments: worded for the Python API, or for a tool's flags by a table.

The library names its arguments (Keras style: "Invalid value for argument
`doc_stride`. Received: doc_stride=100. Expected ..."). A tool's run_tool
words the same error in its flags ("Invalid value for flag --doc_stride.
Received: --doc_stride=100. Expected ...") from a table argument -> label
("--doc_stride", "DATA_FILE"); an argument not in the table keeps the API's
words. Nothing reads a message for names: an error's text is a template
whose format fields are the arguments it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence

# A table argument name -> how a tool names it ("--doc_stride", "DATA_FILE").
Labels = Mapping[str, str]


class ArgumentNamingError(ValueError):
  """An error whose message names arguments.

  `template` is a str.format template whose fields are argument names
  (literal braces doubled); a field's spec says how the API words it:
    {name}       name                   (e.g. "Pass doc_stride=64.")
    {name:q}     `name`
    {name:head}  argument `name`
    {name:true}  name=True  (a tool: its flag, "--name")
    {name:false} name=False (a tool: "--noname")
  A tool words each field as its label, after "flag " for :head.
  """

  def __init__(self, template: str, names: Sequence[str]):
    self.template = template
    self.names = tuple(names)
    super().__init__(self.worded())

  def worded(self, labels: Labels | None = None) -> str:
    """The message, naming each argument in `labels` by its label."""
    labels = labels or {}
    return self.template.format_map(
        {name: _Name(name, labels.get(name)) for name in self.names})


class ArgumentError(ArgumentNamingError):
  """An argument whose value is wrong.

  Worded "Invalid value for argument `name`. Received: name=value{note}.
  {expected}", where each of `others` is shown as name=value after " with "
  before the note.

  Attributes:
    name: the argument.
    value: the value received.
    expected: what was expected ("Expected a positive integer."), and
      advice; a template naming the arguments in `refers_to`.
    others: (name, value) of other arguments the value was checked against.
    note: words after the received values (", but the model embeds ...").
    refers_to: arguments named in `expected` as template fields.
  """

  def __init__(self, name: str, value, expected: str, *,
               others: Sequence[tuple[str, object]] = (), note: str = "",
               refers_to: Sequence[str] = ()):
    self.name = name
    self.value = value
    self.expected = expected
    self.others = tuple(others)
    received = " with ".join(
        [assignment(name, value)] +
        ([", ".join(assignment(n, v) for n, v in self.others)]
         if self.others else []))
    if not refers_to:
      expected = literal(expected)
    super().__init__(
        f"Invalid value for {{{name}:head}}. Received: {received}"
        f"{literal(note)}. {expected}",
        [name, *(n for n, _ in self.others), *refers_to])


def exclusive(values: Mapping[str, object], advice: str, *,
              refers_to: Sequence[str] = ()) -> ArgumentNamingError:
  """Exactly one of the arguments `values` names was expected: "Expected
  exactly one of `a` and `b`. Received: a=..., b=.... {advice}" (`advice`
  a template naming `values` and `refers_to` when refers_to is given)."""
  names = " and ".join(f"{{{name}:q}}" for name in values)
  received = ", ".join(assignment(n, v) for n, v in values.items())
  return ArgumentNamingError(
      f"Expected exactly one of {names}. Received: {received}. "
      f"{advice if refers_to else literal(advice)}",
      [*values, *refers_to])


def needs(name: str, value, needed: str, advice: str, *,
          refers_to: Sequence[str] = ()) -> ArgumentNamingError:
  """An argument needs another that is missing: "`a`='x' needs `b`.
  {advice}" (a template naming `name`, `needed`, `refers_to` when
  refers_to is given)."""
  return ArgumentNamingError(
      f"{{{name}:q}}={literal(repr(value))} needs {{{needed}:q}}. "
      f"{advice if refers_to else literal(advice)}",
      [name, needed, *refers_to])


def assignment(name: str, value) -> str:
  """The template of "name=repr(value)"."""
  return f"{{{name}}}={literal(repr(value))}"


def literal(text: str) -> str:
  """`text` as template text that names no argument."""
  return text.replace("{", "{{").replace("}", "}}")


class _Name:
  """An argument in a template: its API words, or a tool's label."""

  def __init__(self, name: str, label: str | None):
    self._name, self._label = name, label

  def __format__(self, spec: str) -> str:
    if spec in ("true", "false"):
      if not self._label:
        return f"{self._name}={spec.title()}"
      negated = spec == "false" and self._label.startswith("--")
      return "--no" + self._label[2:] if negated else self._label
    if spec == "head":
      return (f"flag {self._label}" if self._label else
              f"argument `{self._name}`")
    if self._label:
      return self._label
    return f"`{self._name}`" if spec == "q" else self._name
