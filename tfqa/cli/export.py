"""tfqa_export: export a tfqa_train run for TF Serving and Hugging Face.

  tfqa_export --model_dir=runs/a --export_dir=exports/a
  tfqa_export --model_dir=runs/a --export_dir=exports/a --version=3 --overwrite
  tfqa_export --model_dir=runs/a --export_dir=exports/a --onnx --quantize=int8
  tfqa_export --model_dir=runs/a --export_dir=exports/a \\
      --null_score_diff_threshold=best    # v2.0: the eval's best_f1_thresh

pretrained/ and manifest.json always describe the newest export.

Writes EXPORT_DIR/saved_model/MODEL_NAME/VERSION (with warm-up requests),
EXPORT_DIR/pretrained (save_pretrained + model card) and
EXPORT_DIR/manifest.json, after checking the export against the checkpoint.
--onnx adds EXPORT_DIR/onnx/model.onnx; --quantize=int8 adds
onnx/model.int8.onnx and tflite/model.int8.tflite, refused when they lose
more than 1.0 F1 point on the probe set (unless --allow_quality_drop). These
need the `onnx` extra.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from tfqa.cli import common  # Sets the Keras 2 environment first.

from absl import app
from absl import flags

from tfqa import api
from tfqa import config
from tfqa import signals
from tfqa.cli import config_flags

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A tfqa_train run.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Where saved_model/, pretrained/ and manifest.json go.")
_PROBE_FILE = flags.DEFINE_string(
    "probe_file", None, "SQuAD JSON for verification and warm-up requests "
    "(default: the run's eval_file, else the bundled sample).")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix, or 'best': the run's --keep_best "
    "checkpoint (default: newest readable).")
# Flag name -> dotted field ("export.version", "portable.onnx"): the
# settings of config.EXPORT_FLAG_FIELDS, from their dataclasses.
FLAG_FIELDS = config_flags.define_flags(
    {"export": config.ExportConfig, "portable": config.PortableConfig},
    fields=config.EXPORT_FLAG_FIELDS,
    choices={"quantize": config.QUANTIZE_MODES},
    lower_bounds=config.EXPORT_FLAG_LOWER_BOUNDS)

_GENERATED_GROUPS = config_flags.help_groups(
    FLAG_FIELDS, section_groups=config.EXPORT_SECTION_HELP_GROUPS,
    field_groups=config.EXPORT_FIELD_HELP_GROUPS)
HELP_GROUPS = {
    "Input": ["model_dir", "checkpoint"],
    "Output": ["export_dir", *_GENERATED_GROUPS["Output"]],
    "Verification": [*_GENERATED_GROUPS["Verification"], "probe_file"],
}


def _no_answer_threshold(text):
  """The flag's value: None, "best", a float, or text the export refuses."""
  try:
    return float(text)
  except (TypeError, ValueError):
    return text


def _settings() -> dict:
  """api.export's keyword arguments from the generated flags."""
  sections = config_flags.section_values(FLAG_FIELDS)
  settings = {**sections["export"], **sections["portable"]}
  settings["no_answer_threshold"] = _no_answer_threshold(
      settings["no_answer_threshold"])
  return settings


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  for holder in (_MODEL_DIR, _EXPORT_DIR):
    if not holder.value:
      raise app.UsageError(f"--{holder.name} is required.")
  try:
    # A SIGTERM/SIGINT stops the export at once, except while it publishes.
    with signals.SignalCapture() as capture, capture.mode(interruptible=True):
      result = api.export(
          _MODEL_DIR.value, _EXPORT_DIR.value, checkpoint=_CHECKPOINT.value,
          probe_file=_PROBE_FILE.value, **_settings())
  except signals.SignalReceived as e:
    print(f"tfqa_export: {e} before publishing: nothing was published and "
          f"the staging files are removed; an earlier export in "
          f"--export_dir={_EXPORT_DIR.value} is unchanged. Run the same "
          f"command to export.", file=sys.stderr, flush=True)
    signals.exit_now(e.exit_code)
  print(json.dumps(dataclasses.asdict(result), indent=2, ensure_ascii=False))


def describe(error: Exception) -> str | None:
  """tfqa_export's wording of an OSError (None: the error's own message)."""
  if isinstance(error, OSError):
    # A missing input, or an export directory that cannot be written: the
    # export is staged and renamed into place, so nothing partial remains.
    return (f"{error}. Nothing was published; an earlier export in "
            f"--export_dir={_EXPORT_DIR.value} is unchanged.")
  return None


def run():
  common.run_tool(main, __doc__, HELP_GROUPS, describe=describe,
                  labels=config_flags.argument_labels(FLAG_FIELDS))


if __name__ == "__main__":
  run()
