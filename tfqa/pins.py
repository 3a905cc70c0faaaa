"""The versions tfqa is tested with (constraints.txt, which the wheel carries) and whether this Python runs them."""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable

from packaging.requirements import InvalidRequirement, Requirement

CONSTRAINTS_FILE = "constraints.txt"
# Where the wheel puts constraints.txt, relative to the install prefix
# (setup.cfg's [options.data_files]).
INSTALLED_CONSTRAINTS = "share/tfqa/" + CONSTRAINTS_FILE
# Shown by `check_environment`, in this order.
SHOWN = ("tfqa", "tensorflow", "tensorflow-text", "tf-keras", "transformers",
         "numpy")


def normalize(name: str) -> str:
  """A distribution name in PEP 503 normal form ("TF_Keras" -> "tf-keras")."""
  return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(name: str) -> str | None:
  """The installed version of distribution `name`; None when it is absent."""
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


def parse_pins(text: str, *, source: str = CONSTRAINTS_FILE) -> dict[str, str]:
  """{normalized name: version} of a constraints file's `name==version` lines.

  Args:
    text: the file's contents; blank lines and `#` comments are skipped.
    source: the file's name, for error messages.

  Returns:
    The pins, in file order.

  Raises:
    ValueError: a line is not `name==version`.
  """
  pins = {}
  for number, line in enumerate(text.splitlines(), start=1):
    line = line.split("#", 1)[0].strip()
    if not line:
      continue
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)",
                         line)
    if not match:
      raise ValueError(f"{source} line {number}: {line!r}; expected "
                       f"name==version (an exact pin).")
    pins[normalize(match.group(1))] = match.group(2)
  return pins


def constraints_path(package_dir: str | None = None) -> str:
  """The constraints.txt that goes with the tfqa being run.

  A source checkout's (next to the `tfqa` package) wins over the installed
  wheel's (<prefix>/share/tfqa/constraints.txt).

  Args:
    package_dir: the `tfqa` package directory; defaults to this one.

  Returns:
    The file's path.

  Raises:
    FileNotFoundError: neither exists.
  """
  package_dir = package_dir or os.path.dirname(os.path.abspath(__file__))
  checkout = os.path.join(os.path.dirname(package_dir), CONSTRAINTS_FILE)
  if os.path.isfile(checkout):
    return checkout
  try:
    files = importlib.metadata.distribution("tfqa").files or []
  except importlib.metadata.PackageNotFoundError:
    files = []
  for file in files:
    if file.as_posix().endswith(INSTALLED_CONSTRAINTS):
      return os.path.normpath(file.locate())
  raise FileNotFoundError(
      f"No {CONSTRAINTS_FILE} next to {package_dir} nor in the installed tfqa "
      f"distribution's files ({INSTALLED_CONSTRAINTS}); expected one of them: "
      f"install tfqa from its wheel or run it from a checkout.")


def required_distributions(
    name: str = "tfqa", *,
    requires: Callable[[str], list[str] | None] = importlib.metadata.requires,
) -> set[str]:
  """Normalized names of the distributions `name` needs, itself included.

  Follows the requirements of every installed distribution reached, without
  extras, skipping those whose environment marker excludes this Python.

  Args:
    name: the distribution to start from.
    requires: importlib.metadata.requires, or a fake for tests.

  Returns:
    The names reached (installed or not: a missing one shows up as "not
    installed" in `mismatches`).
  """
  seen, todo = set(), [normalize(name)]
  while todo:
    current = todo.pop()
    if current in seen:
      continue
    seen.add(current)
    try:
      lines = requires(current) or []
    except importlib.metadata.PackageNotFoundError:
      continue
    for line in lines:
      try:
        requirement = Requirement(line)
      except InvalidRequirement:
        continue
      if requirement.marker and not requirement.marker.evaluate(
          {"extra": ""}):
        continue
      todo.append(normalize(requirement.name))
  return seen


def mismatches(pins: dict[str, str], names: Iterable[str], *,
               version: Callable[[str], str] = importlib.metadata.version,
               ) -> list[str]:
  """One line per pinned distribution among `names` not at its pin.

  Args:
    pins: from `parse_pins`.
    names: the distributions that must hold their pins (others are ignored:
      an optional extra's pin, or a package the runtime came with).
    version: importlib.metadata.version, or a fake for tests.

  Returns:
    "tensorflow 2.20.0 (pinned 2.21.0)" or "tensorflow not installed (pinned
    2.21.0)" lines, sorted; empty when every pin holds.
  """
  found = []
  for name in sorted(set(map(normalize, names)) & set(pins)):
    try:
      installed = version(name)
    except importlib.metadata.PackageNotFoundError:
      installed = "not installed"
    if installed != pins[name]:
      found.append(f"{name} {installed} (pinned {pins[name]})")
  return found


def check_environment(path: str | None = None) -> dict[str, str]:
  """Checks that every pinned distribution tfqa needs is at its pin.

  Args:
    path: a constraints file; defaults to `constraints_path()`.

  Returns:
    {name: installed version} of SHOWN, for a one-line report.

  Raises:
    RuntimeError: some distribution differs from its pin (all are named).
  """
  path = path or constraints_path()
  with open(path, encoding="utf-8") as f:
    pins = parse_pins(f.read(), source=path)
  found = mismatches(pins, required_distributions("tfqa"))
  if found:
    raise RuntimeError(
        f"Installed versions differ from tfqa's pins in {path}: "
        f"{'; '.join(found)}. Expected the pinned versions: reinstall with "
        f"`pip install -c {path} tfqa` and restart Python.")
  return {name: importlib.metadata.version(name) for name in SHOWN}
