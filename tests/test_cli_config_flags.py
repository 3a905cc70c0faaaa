"""Tests for tfqa.cli.config_flags: flags generated from the config dataclasses."""

from __future__ import annotations

import dataclasses

from absl import flags
import pytest

from tfqa import config
from tfqa.cli import config_flags


@dataclasses.dataclass(frozen=True)
class _Section:
  """A section for the tests."""

  # Windows per step. More text that the summary leaves out.
  width: int = 4
  # A rate, e.g. 0.5.
  rate: float = 0.5
  # Whether to go.
  go: bool = False
  # A name, or nothing.
  name: str | None = None
  # Batching (one of a few).
  padding: str = "dynamic"


@dataclasses.dataclass(frozen=True)
class _Uncommented:
  """A field without a comment."""

  # Documented.
  a: int = 1
  b: int = 2


def test_field_comments_are_joined_per_field():
  assert config.field_comments(_Section) == {
      "width": "Windows per step. More text that the summary leaves out.",
      "rate": "A rate, e.g. 0.5.", "go": "Whether to go.",
      "name": "A name, or nothing.", "padding": "Batching (one of a few)."}


def test_a_field_without_comment_is_refused():
  with pytest.raises(ValueError, match=r"_Uncommented: fields without a "
                     r"comment above them: \['b'\]"):
    config.field_comments(_Uncommented)


@pytest.mark.parametrize("section", list(config.SECTION_TYPES.values()))
def test_every_config_field_has_a_comment(section):
  comments = config.field_comments(section)
  assert set(comments) == {f.name for f in dataclasses.fields(section)}


def test_summary_is_the_first_sentence():
  assert config_flags.summary("Peak rate. Decays after.") == "Peak rate."
  assert config_flags.summary("Adam epsilon (e.g. 1e-8). Added.") == (
      "Adam epsilon (e.g. 1e-8).")
  assert config_flags.summary("No full stop") == "No full stop"


def test_define_flags_types_defaults_help_and_choices():
  values = flags.FlagValues()
  fields = config_flags.define_flags({"pipeline": _Section},
                                     flag_values=values)
  assert fields == {"width": "pipeline.width", "rate": "pipeline.rate",
                    "go": "pipeline.go", "name": "pipeline.name",
                    "padding": "pipeline.padding"}
  values(["prog", "--width=8", "--nogo", "--padding=bucketed"])
  assert values["width"].value == 8 and values["rate"].value == 0.5
  assert values["go"].value is False and values["name"].value is None
  assert values["padding"].value == "bucketed"
  assert values["width"].help == ("Windows per step.\n"
                                  "More text that the summary leaves out.")
  with pytest.raises(flags.IllegalFlagValueError, match="width_buckets"):
    values(["prog", "--padding=sorted"])
  assert config_flags.section_values(fields, flag_values=values) == {
      "pipeline": {"width": 8, "rate": 0.5, "go": False, "name": None,
                   "padding": "bucketed"}}
  assert config_flags.section_values(fields, flag_values=values,
                                     only_present=True) == {
      "pipeline": {"width": 8, "go": False, "padding": "bucketed"}}


def test_every_run_config_field_becomes_a_flag_with_its_default():
  values = flags.FlagValues()
  fields = config_flags.define_flags(config.SECTION_TYPES, flag_values=values)
  expected = {f"{section}.{f.name}": f.default
              for section, cls in config.SECTION_TYPES.items()
              for f in dataclasses.fields(cls)}
  assert {dotted: values[name].default for name, dotted in fields.items()
          } == expected


def test_help_groups_follow_the_config():
  values = flags.FlagValues()
  fields = config_flags.define_flags(config.SECTION_TYPES, flag_values=values)
  groups = config_flags.help_groups(fields)
  assert list(groups) == ["Data", "Model", "Windows and answers",
                          "Optimisation", "Checkpoints", "Longer runs",
                          "Runtime"]
  assert groups["Checkpoints"] == ["save_every_steps", "keep_checkpoints",
                                   "deterministic"]
  assert groups["Longer runs"] == ["init_checkpoint",
                                   "gradient_accumulation_steps",
                                   "eval_every_steps", "keep_best"]
  assert sorted(sum(groups.values(), [])) == sorted(fields)


@dataclasses.dataclass(frozen=True)
class _Tuned:
  """A section with a bounded int, text-or-number and an API-only field."""

  # Version number. None: the next.
  version: int | None = None
  # A number, or 'best'.
  threshold: float | str | None = None
  # Kept out of the flags.
  tolerance: float = 1e-4


def test_define_flags_takes_the_fields_bounds_and_choices_it_is_given():
  values = flags.FlagValues()
  fields = config_flags.define_flags(
      {"export": _Tuned, "pipeline": _Section}, flag_values=values,
      fields={"export": ("version", "threshold"), "pipeline": ("padding",)},
      choices={"padding": ("dynamic", "bucketed")},
      lower_bounds={"version": 1})
  assert fields == {"version": "export.version",
                    "threshold": "export.threshold",
                    "padding": "pipeline.padding"}
  values(["prog", "--threshold=best", "--padding=bucketed"])
  assert values["threshold"].value == "best"  # text: the tool reads it
  with pytest.raises(flags.IllegalFlagValueError,
                     match=r"--version=0: 0 is not a positive integer"):
    values(["prog", "--version=0"])
  with pytest.raises(flags.IllegalFlagValueError, match="one of <dynamic|bucketed>"):
    values(["prog", "--padding=width_buckets"])
  groups = config_flags.help_groups(
      fields, section_groups={"export": "Output", "pipeline": "Output"},
      field_groups={"version": "Versions"})
  assert groups == {"Output": ["threshold", "padding"],
                    "Versions": ["version"]}


def test_tfqa_export_flags_are_the_export_configs_fields():
  from tfqa.cli import export as export_cli  # defines its flags in FLAGS
  flag_name = lambda field: config_flags.FLAG_NAMES.get(field, field)
  assert export_cli.FLAG_FIELDS == {
      **{flag_name(name): f"export.{name}"
         for name in config.EXPORT_FLAG_FIELDS["export"]},
      **{flag_name(name): f"portable.{name}"
         for name in config.EXPORT_FLAG_FIELDS["portable"]}}
  # ExportConfig's threshold keeps the flag name users know.
  assert (export_cli.FLAG_FIELDS["null_score_diff_threshold"] ==
          "export.no_answer_threshold")
  defaults = {name: flags.FLAGS[name].default
              for name in export_cli.FLAG_FIELDS}
  export_defaults = config.ExportConfig()
  portable_defaults = config.PortableConfig()
  assert defaults == {
      name: getattr(export_defaults if dotted.startswith("export.")
                    else portable_defaults, dotted.partition(".")[2])
      for name, dotted in export_cli.FLAG_FIELDS.items()}
  assert defaults["max_windows_per_batch"] == 8
  assert flags.FLAGS["version"].parser.lower_bound == 1
  assert flags.FLAGS["quantize"].parser.enum_values == ["int8"]


def test_argument_labels_name_each_field_by_its_flag():
  assert config_flags.argument_labels(
      {"null_score_diff_threshold": "export.no_answer_threshold",
       "version": "export.version"}) == {
           "no_answer_threshold": "--null_score_diff_threshold",
           "version": "--version"}
