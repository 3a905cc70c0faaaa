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
from tfqa.export import portable as portable_lib

_DEFAULTS = config.ExportConfig()

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A tfqa_train run.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Where saved_model/, pretrained/ and manifest.json go.")
_MODEL_NAME = flags.DEFINE_string(
    "model_name", _DEFAULTS.model_name,
    "TF Serving model name (directory under saved_model/).")
_VERSION = flags.DEFINE_integer(
    "version", None, "Version number (default: 1 + the largest existing).",
    lower_bound=1)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", _DEFAULTS.overwrite, "Replace an existing version directory.")
_VERIFY = flags.DEFINE_bool(
    "verify", _DEFAULTS.verify, "Check logits and answers against the checkpoint before "
    "publishing (--noverify to skip).")
_PROBE_FILE = flags.DEFINE_string(
    "probe_file", None, "SQuAD JSON for verification and warm-up requests "
    "(default: the run's eval_file, else the bundled sample).")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix, or 'best': the run's --keep_best "
    "checkpoint (default: newest readable).")
_MAX_WINDOWS_PER_BATCH = flags.DEFINE_integer(
    "max_windows_per_batch", _DEFAULTS.max_windows_per_batch,
    "Windows per model call in serving_default, length-sorted (0: all "
    "windows of a request at once; larger values suit GPUs).", lower_bound=0)
_ONNX = flags.DEFINE_bool(
    "onnx", portable_lib.PortableConfig.onnx,
    "Also write onnx/model.onnx (tf2onnx, predict_logits), checked against "
    "the SavedModel.")
_QUANTIZE = flags.DEFINE_enum(
    "quantize", portable_lib.PortableConfig.quantize,
    list(portable_lib.QUANTIZE_MODES),
    "int8: also onnx/model.int8.onnx and tflite/model.int8.tflite, scored "
    "on the probe set (implies --onnx).")
_ALLOW_QUALITY_DROP = flags.DEFINE_bool(
    "allow_quality_drop", portable_lib.PortableConfig.allow_quality_drop,
    f"Publish quantized models that lose more than "
    f"{portable_lib.DEFAULT_MAX_F1_DROP:g} F1 point on the probe set.")

_NULL_SCORE_DIFF_THRESHOLD = flags.DEFINE_string(
    "null_score_diff_threshold", None,
    "SQuAD v2.0 runs: answer nothing when the null score beats the best "
    "span's by more than this number; 'best': the best_f1_thresh of the "
    "exported checkpoint's evaluation (MODEL_DIR/eval). Default: the run's.")
_LICENSE = flags.DEFINE_string(
    "license", _DEFAULTS.license,
    "The model card's license (a Hugging Face Hub license id, e.g. mit, "
    "cc-by-sa-4.0, other).")

HELP_GROUPS = {
    "Input": ["model_dir", "checkpoint"],
    "Output": ["export_dir", "model_name", "version", "overwrite",
               "max_windows_per_batch", "null_score_diff_threshold", "onnx",
               "quantize", "license"],
    "Verification": ["verify", "probe_file", "allow_quality_drop"],
}


def _null_score_diff_threshold():
  """The flag's value: None, "best", a float, or text the export refuses."""
  value = _NULL_SCORE_DIFF_THRESHOLD.value
  try:
    return float(value)
  except (TypeError, ValueError):
    return value


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
          probe_file=_PROBE_FILE.value, onnx=_ONNX.value,
          quantize=_QUANTIZE.value,
          allow_quality_drop=_ALLOW_QUALITY_DROP.value,
          model_name=_MODEL_NAME.value, version=_VERSION.value,
          overwrite=_OVERWRITE.value, verify=_VERIFY.value,
          max_windows_per_batch=_MAX_WINDOWS_PER_BATCH.value,
          null_score_diff_threshold=_null_score_diff_threshold(),
          license=_LICENSE.value)
  except signals.SignalReceived as e:
    print(f"tfqa_export: {e} before publishing: nothing was published and "
          f"the staging files are removed; an earlier export in "
          f"--export_dir={_EXPORT_DIR.value} is unchanged. Run the same "
          f"command to export.", file=sys.stderr, flush=True)
    signals.exit_now(e.exit_code)
  except (ValueError, ImportError) as e:
    sys.exit(f"tfqa_export: error: {e}")
  except OSError as e:
    # A missing input, or an export directory that cannot be written: the
    # export is staged and renamed into place, so nothing partial remains.
    sys.exit(f"tfqa_export: error: {e}. Nothing was published; an earlier "
             f"export in --export_dir={_EXPORT_DIR.value} is unchanged.")
  print(json.dumps(dataclasses.asdict(result), indent=2, ensure_ascii=False))


def run():
  common.run_tool(main, __doc__, HELP_GROUPS)


if __name__ == "__main__":
  run()
