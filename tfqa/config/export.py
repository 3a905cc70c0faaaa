"""How a run is exported (tfqa_export's settings) as a frozen dataclass."""

from __future__ import annotations

import dataclasses
import math
import re

from tfqa import errors
from tfqa.config import checks


_EXPORT_MODEL_NAME_REGEX = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """How a run is exported (tfqa_export): names, version, checks, serving batches."""

  # TF Serving model name (directory under saved_model/).
  model_name: str = "tfqa"
  # Version number (default: 1 + the largest existing). None: that default.
  version: int | None = None
  # Replace an existing version directory. (pretrained/ and manifest.json
  # always describe the newest export and are replaced.)
  overwrite: bool = False
  # Check logits and answers against the checkpoint before publishing
  # (--noverify to skip).
  verify: bool = True
  # Windows per model call in serving_default, length-sorted (0: all
  # windows of a request at once; larger values suit GPUs). None is 0. On
  # CPUs small chunks answer a
  # batch of questions faster than one batch padded to its longest window
  # (BENCHMARKS.md); accelerators prefer larger ones.
  max_windows_per_batch: int | None = 8
  # SQuAD v2.0 runs: answer nothing when the null score beats the best
  # span's by more than this number; 'best': the best_f1_thresh of the
  # exported checkpoint's evaluation (MODEL_DIR/eval); default: the run's.
  # (The threshold the export applies, as the run's decode
  # null_score_diff_threshold, whose name tfqa_export's flag keeps; None
  # keeps the run's.)
  no_answer_threshold: float | str | None = None
  # Questions of the probe file that verification and the ONNX checks use.
  max_probe_questions: int = 200
  # Largest |logit difference| tolerated between the checkpoint, the
  # SavedModel, the reloaded pretrained copy (TF and PyTorch) and ONNX.
  logits_tolerance: float = 1e-4
  # Share of probe questions on which serving_default must give the Python
  # path's answer.
  min_answer_agreement: float = 0.99
  # Requests written to assets.extra/tf_serving_warmup_requests.
  num_warmup_requests: int = 4
  # The model card's license (a Hugging Face Hub license id, e.g. mit,
  # cc-by-sa-4.0, other). Apache-2.0 is
  # that of tfqa, BERT and the bundled MiniLM; check your base model's and
  # your data's terms (SQuAD is CC BY-SA 4.0) before you publish.
  license: str = "apache-2.0"

  def __post_init__(self):
    name = self.model_name
    if not isinstance(name, str) or not re.fullmatch(
        _EXPORT_MODEL_NAME_REGEX, name) or name.isdigit():
      raise errors.ArgumentError(
          "model_name", name,
          f"Expected a TF Serving model name: letters, digits, '_', '.' or '-', not starting with a symbol and "
          f"not all digits. Pass e.g. {{model_name}}='tfqa'.",
          refers_to=["model_name"])
    if self.version is not None and (not checks.is_int(self.version) or
                                     self.version < 1):
      raise errors.ArgumentError(
          "version", self.version,
          "Expected a positive integer (TF Serving version directory), or "
          "None for the next free version.")
    checks.require_bool(self, "overwrite", "verify")
    if self.max_windows_per_batch is not None:
      checks.require_positive(self, "max_windows_per_batch")
    checks.require_positive(self, "max_probe_questions", "num_warmup_requests")
    threshold = self.no_answer_threshold
    if not (threshold is None or threshold == "best" or (
        checks.is_number(threshold) and math.isfinite(threshold))):
      raise errors.ArgumentError(
          "no_answer_threshold", threshold,
          "Expected a finite number or 'best' (the best_f1_thresh of the "
          "checkpoint's evaluation).")
    if not (checks.is_number(self.logits_tolerance) and
            0 <= self.logits_tolerance < math.inf):
      raise errors.ArgumentError(
          "logits_tolerance", self.logits_tolerance,
          "Expected a finite number >= 0, e.g. 1e-4.")
    if not (checks.is_number(self.min_answer_agreement) and
            0 <= self.min_answer_agreement <= 1):
      raise errors.ArgumentError(
          "min_answer_agreement", self.min_answer_agreement,
          "Expected a share in [0, 1], e.g. 0.99.")
    if not isinstance(self.license, str) or not re.fullmatch(
        r"[a-z0-9][a-z0-9.+-]*", self.license):
      raise errors.ArgumentError(
          "license", self.license,
          "Expected a Hugging Face Hub license id (lower case, e.g. "
          "'apache-2.0', 'mit', 'cc-by-sa-4.0', 'other').")


QUANTIZE_MODES = ("int8",)
# ONNX opset 17 has LayerNormalization; older runtimes cannot load newer
# opsets, so it is not raised past what the checks need.
DEFAULT_OPSET = 17
MIN_OPSET = 17
# A quantized model may lose at most this many F1 points on the probe set.
DEFAULT_MAX_F1_DROP = 1.0


@dataclasses.dataclass(frozen=True)
class PortableConfig:
  """Which portable artifacts an export writes, and its quality gate."""

  # Also write onnx/model.onnx (tf2onnx, predict_logits), checked against
  # the SavedModel. (float32, from the predict_logits signature.)
  onnx: bool = False
  # int8: also onnx/model.int8.onnx and tflite/model.int8.tflite, scored
  # on the probe set (implies --onnx). None: no quantized artifacts.
  quantize: str | None = None
  # Publish quantized models that lose more than 1 F1 point on the probe
  # set. (More than max_f1_drop points; the manifest still records the loss.)
  allow_quality_drop: bool = False
  # F1 points (0-100 scale) a quantized artifact may lose on the probe set.
  max_f1_drop: float = DEFAULT_MAX_F1_DROP
  # ONNX opset of the conversion.
  opset: int = DEFAULT_OPSET

  def __post_init__(self):
    checks.require_bool(self, "onnx", "allow_quality_drop")
    if self.quantize is not None and self.quantize not in QUANTIZE_MODES:
      raise errors.ArgumentError(
          "quantize", self.quantize,
          f"Expected one of {QUANTIZE_MODES} or None ({{quantize}}=int8).",
          refers_to=["quantize"])
    if (isinstance(self.max_f1_drop, bool) or
        not isinstance(self.max_f1_drop, (int, float)) or
        not 0 <= self.max_f1_drop <= 100):
      raise errors.ArgumentError(
          "max_f1_drop", self.max_f1_drop,
          f"Expected F1 points in [0, 100], e.g. {DEFAULT_MAX_F1_DROP}.")
    if (isinstance(self.opset, bool) or not isinstance(self.opset, int) or
        self.opset < MIN_OPSET):
      raise errors.ArgumentError("opset", self.opset,
                                 f"Expected an int >= {MIN_OPSET}.")

  @property
  def enabled(self) -> bool:
    """Whether any portable artifact is written."""
    return self.onnx or self.quantize is not None


# Questions per SavedModel call of tfqa_predict (bounds memory on long input
# files).
PREDICT_BATCH_SIZE = 32
# Windows per ONNX Runtime call, grouped by length and padded as the run
# pads (inference/batching.py). Small chunks beat one call padded to the
# longest window on CPUs (the serving graph's default max_windows_per_batch,
# 8, for the same reason; BENCHMARKS.md).
ONNX_BATCH_SIZE = 8
# Questions per serving_default call while verifying an export (bounds
# memory).
VERIFY_BATCH_SIZE = 16


# tfqa_export's flags, generated from these fields (tfqa.cli.config_flags):
# section -> fields. "portable" is PortableConfig. The
# other fields are the Python API's (tfqa.export(...)) tuning of the checks.
EXPORT_FLAG_FIELDS = {
    "export": ("model_name", "version", "overwrite", "verify",
               "max_windows_per_batch", "no_answer_threshold",
               "license"),
    "portable": ("onnx", "quantize", "allow_quality_drop"),
}
# Smallest values of tfqa_export's integer flags (absl refuses less).
EXPORT_FLAG_LOWER_BOUNDS = {"version": 1, "max_windows_per_batch": 0}
# `tfqa_export --help` groups: each section's fields under its group, unless
# EXPORT_FIELD_HELP_GROUPS names another.
EXPORT_SECTION_HELP_GROUPS = {"export": "Output", "portable": "Output"}
EXPORT_FIELD_HELP_GROUPS = dict.fromkeys(("verify", "allow_quality_drop"),
                                         "Verification")
