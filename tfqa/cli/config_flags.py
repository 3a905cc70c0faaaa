"""absl flags generated from the config dataclasses: name, type, default and help from each field."""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import re

from absl import flags

from tfqa import config as config_lib

_FIRST_SENTENCE = re.compile(r"^(.*?\.)(?=\s+[A-Z(\"']|\s*$)")


def summary(help_text: str) -> str:
  """The first sentence of a help text (what grouped --help shows)."""
  match = _FIRST_SENTENCE.match(help_text.strip())
  return match.group(1) if match else help_text.strip()


def define_flags(sections: Mapping[str, type], *,
                 flag_values: flags.FlagValues = flags.FLAGS
                 ) -> dict[str, str]:
  """Defines one flag per field of each section's dataclass.

  Args:
    sections: section name (as in RunConfig) -> its dataclass.
    flag_values: where to define them.

  Returns:
    flag name -> dotted field name ("train.seed"), in definition order.
  """
  flag_fields = {}
  for section, cls in sections.items():
    comments = config_lib.field_comments(cls)
    for field in dataclasses.fields(cls):
      # The first line is what grouped --help shows.
      first = summary(comments[field.name])
      rest = comments[field.name].strip()[len(first):].strip()
      _define(field, f"{first}\n{rest}" if rest else first, flag_values)
      flag_fields[field.name] = f"{section}.{field.name}"
  return flag_fields


def _define(field: dataclasses.Field, help_text: str,
            flag_values: flags.FlagValues) -> None:
  kinds = {part.strip() for part in str(field.type).split("|")} - {"None"}
  if len(kinds) != 1:
    raise TypeError(f"Field {field.name}: cannot make a flag of type "
                    f"{field.type!r}.")
  kind, = kinds
  default = field.default
  choices = config_lib.FIELD_CHOICES.get(field.name)
  if choices is not None:
    flags.DEFINE_enum(field.name, default, list(choices), help_text,
                      flag_values=flag_values)
  elif kind == "bool":
    flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
  elif kind == "int":
    flags.DEFINE_integer(field.name, default, help_text,
                         flag_values=flag_values)
  elif kind == "float":
    flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
  elif kind == "str":
    flags.DEFINE_string(field.name, default, help_text,
                        flag_values=flag_values)
  else:
    raise TypeError(f"Field {field.name}: cannot make a flag of type "
                    f"{field.type!r}.")


def help_groups(flag_fields: Mapping[str, str]) -> dict[str, list[str]]:
  """--help groups of generated flags (config.SECTION_HELP_GROUPS, FIELD_HELP_GROUPS)."""
  titles = [*config_lib.SECTION_HELP_GROUPS.values(),
            *config_lib.FIELD_HELP_GROUPS.values()]
  groups: dict[str, list[str]] = {title: [] for title in titles}
  for name, dotted in flag_fields.items():
    section = dotted.partition(".")[0]
    title = config_lib.FIELD_HELP_GROUPS.get(
        name, config_lib.SECTION_HELP_GROUPS[section])
    groups[title].append(name)
  return {title: names for title, names in groups.items() if names}


def section_values(flag_fields: Mapping[str, str], *,
                   flag_values: flags.FlagValues = flags.FLAGS,
                   only_present: bool = False) -> dict[str, dict]:
  """section -> {field: flag value}; with only_present, the flags set now."""
  sections: dict[str, dict] = {}
  for name, dotted in flag_fields.items():
    if only_present and not flag_values[name].present:
      continue
    section, _, field = dotted.partition(".")
    sections.setdefault(section, {})[field] = flag_values[name].value
  return sections
