"""The quality study's arms: their specs, the settings a run records, the label those settings earn, and the migration of a results file's labels.

Not a library module: quality_parity.py and the tests import it from the
benchmarks directory. TensorFlow-free (tfqa.config is), so labels and the
report are checked without training anything.

A row's recorded `settings` are the ground truth of what ran; its label
(`arm`) is derived from them by `arm_label`, relative to today's defaults
of tfqa and of the upstream recipe:
  tfqa            tfqa's defaults;
  tfqa+F=V...     tfqa with those RunConfig fields off its defaults, train
                  fields first, then pipeline, features, decode, each in
                  dataclass order (so tfqa's optimizer settings read first),
                  then select=dev when the run is scored with the checkpoint
                  that did best on a dev split of its training fold;
  recipe          the transformers TF recipe as upstream ships it: global
                  clipnorm 1.0 (TrainingArguments' max_grad_norm), Adam
                  epsilon 1e-8, each shuffled batch padded to its longest
                  window (run_qa.py's default);
  recipe384       the same recipe with every window padded to 384;
  recipe[384]+F=V the recipe with its optimizer settings overridden, e.g.
                  recipe+max_grad_norm=0.0, the recipe without clipping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re

import hf_recipe

from tfqa import config

# The study's arms, by role.
TFQA = "tfqa"
RECIPE = "recipe"  # upstream as it ships: clip 1.0, per-batch padding
RECIPE_UNCLIPPED = "recipe+max_grad_norm=0.0"
RECIPE_384 = "recipe384"
# tfqa with the recipe's optimizer settings (clipping 1.0, Adam epsilon
# 1e-8, random batches): tfqa's defaults minus this arm is what tfqa's own
# optimizer choices are worth.
ATTRIBUTION = "tfqa+clip_norm=1.0+adam_epsilon=1e-8+padding=dynamic"
# Equal wall-clock against the strongest recipe arm (the unclipped recipe,
# per-batch padding): 6 epochs, the most whose predicted time fits the
# recipe's 4 epochs, from timings alone of one quiet side-by-side epoch on
# fold 4's training articles (train_throughput.py, 2026-12-06: recipe 40.8 s
# first step + 3.289 windows/s; tfqa 12.0 s + 5.421 windows/s; 576 windows
# an epoch: recipe 736 s, tfqa 647 s for 6 epochs, 753 s for 7). Fixed
# before any such run; no held-out F1 was looked at (BENCHMARKS.md).
BUDGET = "tfqa+num_train_epochs=6"
# The fastest setting measured (train_throughput.py, 2026-12-07, on a CPU
# with AVX512-BF16): bfloat16 matmuls and width-16 buckets. What it costs
# in F1 against tfqa's defaults decides whether it can be recommended.
SPEED = "tfqa+mixed_precision=mixed_bfloat16+pad_to_multiple_of=16"
STUDY_ARMS = (TFQA, RECIPE, RECIPE_UNCLIPPED, RECIPE_384, ATTRIBUTION, BUDGET,
              SPEED)
# Arms whose rows the report prints but the study no longer runs: the first
# equal-wall-clock arm, whose 11 epochs were budgeted from the recipe at 384.
REPORTED_ONLY = ("tfqa+num_train_epochs=11",)

_SECTIONS = {"train": config.TrainConfig, "pipeline": config.PipelineConfig,
             "features": config.FeatureConfig, "decode": config.DecodeConfig}
# The recipe's settings as upstream ships them (padding: run_qa.py's default).
RECIPE_DEFAULTS = {"padding": "longest", "max_length": hf_recipe.MAX_LENGTH,
                   "stride": hf_recipe.STRIDE,
                   "adam_epsilon": hf_recipe.ADAM_EPSILON,
                   "max_grad_norm": hf_recipe.MAX_GRAD_NORM,
                   "warmup_ratio": config.TrainConfig().warmup_ratio,
                   "weight_decay": config.TrainConfig().weight_decay}
# What a recipe arm may override (what hf_recipe.train takes).
RECIPE_FIELDS = ("padding", "max_grad_norm", "adam_epsilon")
# A tfqa arm's choice of the checkpoint it is scored with, beside the
# RunConfig fields: "last" (the run's end, every arm's so far) or "dev" (the
# best F1 on a dev split carved from the training fold: DEV_SHARE of its
# paragraphs, drawn by fold and seed, evaluated at every epoch's end and
# not trained on; the held-out questions are never seen before scoring).
SELECT = "select"
SELECT_VALUES = ("last", "dev")
DEV_SHARE = 0.1
# Fields tfqa gained after runs were recorded, at the value that trains as
# before they existed: left out of the key, so those runs still count.
_ADDED_LATER = {"train": {"eval_every_steps": 0, "keep_best": "none",
                          "gradient_accumulation_steps": 1,
                          "require_gpu": False, "time_budget": ""}}


def tfqa_fields() -> tuple[str, ...]:
  """The RunConfig fields a tfqa arm may override, in label order."""
  return tuple(f.name for cls in _SECTIONS.values()
               for f in dataclasses.fields(cls))


def parse_arm(arm: str) -> tuple[str, dict]:
  """("tfqa" | "recipe" | "recipe384", {field: value}) of an arm spec.

  Raises:
    ValueError: in one line, naming the arm and what was expected: an
      unknown kind or field, an item that is not FIELD=VALUE, a field given
      twice, or a recipe value out of range.
  """
  kind, *items = arm.split("+")
  if kind not in ("tfqa", "recipe", "recipe384"):
    raise ValueError(f"Invalid arm {arm!r}: expected tfqa, recipe or "
                     f"recipe384, each optionally followed by +FIELD=VALUE.")
  allowed = (*tfqa_fields(), SELECT) if kind == "tfqa" else RECIPE_FIELDS
  values = {}
  for item in items:
    name, sep, text = item.partition("=")
    if not sep or not name or not text:
      raise ValueError(f"Invalid arm {arm!r}: {item!r} is not FIELD=VALUE.")
    if name not in allowed:
      what = (f"a RunConfig field of features, pipeline, decode or train, "
              f"or {SELECT}" if kind == "tfqa"
              else f"one of {', '.join(RECIPE_FIELDS)}")
      raise ValueError(f"Invalid arm {arm!r}: unknown field {name!r} for a "
                       f"{kind} arm; expected {what}.")
    if name in values:
      raise ValueError(f"Invalid arm {arm!r}: {name} is given twice.")
    values[name] = _parse_value(text)
  if kind != "tfqa":
    _check_recipe_values(arm, values)
  elif values.get(SELECT, "last") not in SELECT_VALUES:
    raise ValueError(f"Invalid arm {arm!r}: {SELECT}={values[SELECT]}; "
                     f"expected one of {', '.join(SELECT_VALUES)}.")
  return kind, values


def _parse_value(text):
  """A number, true/false, or else the text itself."""
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    return text


def _check_recipe_values(arm: str, values: dict) -> None:
  if "padding" in values and values["padding"] not in hf_recipe.PADDINGS:
    raise ValueError(f"Invalid arm {arm!r}: padding={values['padding']}; "
                     f"expected one of {', '.join(hf_recipe.PADDINGS)}.")
  for name, low in (("max_grad_norm", ">= 0 (0: no clipping)"),
                    ("adam_epsilon", "> 0")):
    value = values.get(name, 1.0)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or
        value < 0 or (name == "adam_epsilon" and value == 0)):
      raise ValueError(f"Invalid arm {arm!r}: {name}={values[name]}; "
                       f"expected a number {low}.")


def tfqa_sections(study: dict, overrides: dict) -> dict:
  """The features/pipeline/decode/train configs of a tfqa run.

  Args:
    study: the study's settings of the run (batch_size, learning_rate,
      epochs, seed).
    overrides: RunConfig fields off those, from the arm spec.

  Raises:
    ValueError: an override tfqa's config refuses (its own message).
  """
  sections = {"features": config.FeatureConfig(),
              "pipeline": config.PipelineConfig(),
              "decode": config.DecodeConfig(),
              "train": config.TrainConfig(
                  train_batch_size=study["batch_size"],
                  learning_rate=study["learning_rate"],
                  num_train_epochs=study["epochs"], seed=study["seed"])}
  for name, value in overrides.items():
    owner = next(s for s, obj in sections.items()
                 if name in {f.name for f in dataclasses.fields(obj)})
    sections[owner] = dataclasses.replace(sections[owner], **{name: value})
  return sections


def arm_settings(arm: str, study: dict) -> dict:
  """Everything that determines a run's outcome (its results-file key).

  Args:
    arm: an arm spec (parse_arm).
    study: kind-independent settings: fold, seed, epochs, learning_rate,
      batch_size, model, tiny, data.

  Returns:
    The settings recorded with the run: `study`, `kind`, `overrides` (empty:
    what they change is in the sections) and for tfqa `resolved` (every
    field of its four config sections, so that a change of tfqa's defaults
    is a new key) and, with select=dev, `selection`; for the recipe `recipe` (every setting of the recipe,
    overrides applied; `kind` recipe384 when it pads to 384).
  """
  kind, overrides = parse_arm(arm)
  settings = dict(study, kind=kind, overrides={})
  if kind == "tfqa":
    if overrides.pop(SELECT, "last") == "dev":
      # Absent for "last", so the rows recorded before it keep their keys.
      settings["selection"] = {SELECT: "dev", "dev_share": DEV_SHARE,
                               "metric": "f1"}
    try:
      sections = tfqa_sections(study, overrides)
    except (ValueError, TypeError) as e:
      raise ValueError(f"Invalid arm {arm!r}: tfqa's config refused it: "
                       f"{e}") from None
    settings["resolved"] = {name: dataclasses.asdict(sections[name])
                            for name in ("features", "pipeline", "decode",
                                         "train")}
    return settings
  recipe = dict(RECIPE_DEFAULTS,
                padding="max_length" if kind == "recipe384" else "longest")
  recipe.update({name: value if name == "padding" else float(value)
                 for name, value in overrides.items()})
  settings["kind"] = ("recipe384" if recipe["padding"] == "max_length"
                      else "recipe")
  settings["recipe"] = recipe
  return settings


def settings_key(settings: dict) -> str:
  """A run's key: the hash of its settings, float fields as floats (so that
  clip_norm=0 and the default 0.0 are one setting)."""
  return hashlib.sha256(json.dumps(_canonical(settings), sort_keys=True)
                        .encode()).hexdigest()[:16]


def _canonical(settings: dict) -> dict:
  if "resolved" not in settings:
    return settings
  resolved = {}
  for name, values in settings["resolved"].items():
    floats = {f.name for f in dataclasses.fields(_SECTIONS[name])
              if f.type == "float"}
    neutral = _ADDED_LATER.get(name, {})
    resolved[name] = {k: float(v) if k in floats and isinstance(v, int)
                      else v for k, v in values.items()
                      if k not in neutral or v != neutral[k]}
  return dict(settings, resolved=resolved)


def format_value(value) -> str:
  """A setting as an arm spec writes it: 1.0, 0.0, 1e-8, dynamic, 11."""
  if isinstance(value, float):
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(value)).replace("e+", "e")
  return json.dumps(value) if isinstance(value, bool) else str(value)


def arm_label(settings: dict) -> str:
  """The label a run's recorded settings earn against today's defaults.

  Fields a row does not record are not named (they did not exist when it
  ran); for tfqa the study's own epochs, batch, LR and seed are the
  baseline, so `num_train_epochs=11` shows when an arm overrode epochs.
  """
  if settings["kind"] != "tfqa":
    recipe = settings["recipe"]
    base = "recipe384" if recipe["padding"] == "max_length" else "recipe"
    parts = [f"{name}={format_value(recipe[name])}"
             for name in RECIPE_DEFAULTS
             if name != "padding" and name in recipe and
             float(recipe[name]) != float(RECIPE_DEFAULTS[name])]
    return "+".join([base, *parts])
  actual = _canonical(settings)["resolved"]
  defaults = arm_settings("tfqa", _study_of(settings))
  defaults = _canonical(defaults)["resolved"]
  parts = []
  for section, cls in _SECTIONS.items():
    for field in dataclasses.fields(cls):
      recorded = actual.get(section, {})
      if field.name in recorded and (recorded[field.name] !=
                                     defaults[section].get(field.name)):
        parts.append(f"{field.name}={format_value(recorded[field.name])}")
  if "selection" in settings:
    parts.append(f"{SELECT}={settings['selection'][SELECT]}")
  return "+".join(["tfqa", *parts])


def _study_of(settings: dict) -> dict:
  return {k: settings[k] for k in ("fold", "seed", "epochs", "learning_rate",
                                   "batch_size", "model", "tiny", "data")}


def migrate_rows(rows: list[dict]) -> int:
  """Relabels rows in place by their recorded settings; returns how many changed.

  Idempotent. A relabelled row keeps its first label in `arm_recorded`.
  """
  changed = 0
  for row in rows:
    label = arm_label(row["settings"])
    if row["arm"] != label:
      row.setdefault("arm_recorded", row["arm"])
      row["arm"] = label
      changed += 1
  return changed


def migrate_file(path: str) -> int:
  """Relabels the rows of a results file (migrate_rows); returns how many changed.

  Lines that are not JSON (one cut by a kill) are kept as they are. The
  file is replaced at once: quality_parity.py --migrate holds the lock its
  studies append under.
  """
  with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  rows, out = [], []
  for line in lines:
    try:
      rows.append(json.loads(line))
      out.append(rows[-1])
    except json.JSONDecodeError:
      out.append(line)
  changed = migrate_rows(rows)
  if changed:
    tmp = path + ".migrating"
    with open(tmp, "w", encoding="utf-8") as f:
      for item in out:
        f.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    os.replace(tmp, path)
  return changed
