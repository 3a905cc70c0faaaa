"""absl flags generated from the config dataclasses: name, type, default and help from each field."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import re

from absl import flags

from tfqa import config as config_lib

_FIRST_SENTENCE = re.compile(r"^(.*?\.)(?=\s+[A-Z(\"']|\s*$)")
# Field name -> flag name, where they differ: ExportConfig's threshold has
# its own name (it also takes "best", unlike DecodeConfig's float) and keeps
# the flag users know.
FLAG_NAMES = {"no_answer_threshold": "null_score_diff_threshold"}


def summary(help_text: str) -> str:
  """The first sentence of a help text (what grouped --help shows)."""
  match = _FIRST_SENTENCE.match(help_text.strip())
  return match.group(1) if match else help_text.strip()


def define_flags(sections: Mapping[str, type], *,
                 flag_values: flags.FlagValues = flags.FLAGS,
                 fields: Mapping[str, Sequence[str]] | None = None,
                 choices: Mapping[str, Sequence[str]] | None = None,
                 lower_bounds: Mapping[str, int] | None = None
                 ) -> dict[str, str]:
  """Defines one flag per field of each section's dataclass.

  Args:
    sections: section name (as in RunConfig) -> its dataclass.
    flag_values: where to define them.
    fields: section -> the fields that are flags (default: every field).
    choices: field -> the values its enum flag takes (default:
      config.FIELD_CHOICES).
    lower_bounds: field -> the smallest value of its integer flag.

  Returns:
    flag name -> dotted field name ("train.seed"), in definition order. A
    field's flag is named as the field, unless FLAG_NAMES names another.
  """
  choices = config_lib.FIELD_CHOICES if choices is None else choices
  flag_fields = {}
  for section, cls in sections.items():
    comments = config_lib.field_comments(cls)
    for field in dataclasses.fields(cls):
      if fields is not None and field.name not in fields[section]:
        continue
      # The first line is what grouped --help shows.
      first = summary(comments[field.name])
      rest = comments[field.name].strip()[len(first):].strip()
      name = FLAG_NAMES.get(field.name, field.name)
      _define(field, name, f"{first}\n{rest}" if rest else first,
              flag_values, choices=choices.get(field.name),
              lower_bound=(lower_bounds or {}).get(field.name))
      flag_fields[name] = f"{section}.{field.name}"
  return flag_fields


def _define(field: dataclasses.Field, name: str, help_text: str,
            flag_values: flags.FlagValues, *, choices, lower_bound) -> None:
  kinds = {part.strip() for part in str(field.type).split("|")} - {"None"}
  if "str" in kinds:
    # Text, or a number spelled as text ("best" or 1.5): the tool reads it.
    kinds = {"str"}
  if len(kinds) != 1:
    raise TypeError(f"Field {field.name}: cannot make a flag of type "
                    f"{field.type!r}.")
  kind, = kinds
  default = field.default
  if choices is not None:
    flags.DEFINE_enum(name, default, list(choices), help_text,
                      flag_values=flag_values)
  elif kind == "bool":
    flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
  elif kind == "int":
    flags.DEFINE_integer(name, default, help_text,
                         lower_bound=lower_bound, flag_values=flag_values)
  elif kind == "float":
    flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
  elif kind == "str":
    flags.DEFINE_string(name, default, help_text,
                        flag_values=flag_values)
  else:
    raise TypeError(f"Field {field.name}: cannot make a flag of type "
                    f"{field.type!r}.")


def help_groups(flag_fields: Mapping[str, str], *,
                section_groups: Mapping[str, str] | None = None,
                field_groups: Mapping[str, str] | None = None
                ) -> dict[str, list[str]]:
  """--help groups of generated flags: each section's under its title
  (default: config.SECTION_HELP_GROUPS), unless `field_groups` names
  another (default: config.FIELD_HELP_GROUPS)."""
  if section_groups is None:
    section_groups = config_lib.SECTION_HELP_GROUPS
    field_groups = config_lib.FIELD_HELP_GROUPS
  field_groups = field_groups or {}
  titles = [*section_groups.values(), *field_groups.values()]
  groups: dict[str, list[str]] = {title: [] for title in titles}
  for name, dotted in flag_fields.items():
    section = dotted.partition(".")[0]
    title = field_groups.get(name, section_groups[section])
    groups[title].append(name)
  return {title: names for title, names in groups.items() if names}


def argument_labels(flag_fields: Mapping[str, str]) -> dict[str, str]:
  """field name -> its flag ("--null_score_diff_threshold"): how a tool
  names the library's arguments in errors (common.run_tool's labels)."""
  return {dotted.partition(".")[2]: f"--{name}"
          for name, dotted in flag_fields.items()}


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
