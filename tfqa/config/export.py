"""How a run is exported (tfqa_export's settings) as a frozen dataclass."""

from __future__ import annotations

import dataclasses
import math
import re

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
  # (The threshold the export applies; None keeps the run's.)
  null_score_diff_threshold: float | str | None = None
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
      raise ValueError(
          f"Invalid value for argument `model_name`. Received: "
          f"model_name={name!r}. Expected a TF Serving model name: "
          f"letters, digits, '_', '.' or '-', not starting with a symbol and "
          f"not all digits. Pass e.g. model_name='tfqa'.")
    if self.version is not None and (not checks.is_int(self.version) or
                                     self.version < 1):
      raise ValueError(
          f"Invalid value for argument `version`. Received: "
          f"version={self.version!r}. Expected a positive integer (TF Serving "
          f"version directory), or None for the next free version.")
    for field in ("overwrite", "verify"):
      value = getattr(self, field)
      if not isinstance(value, bool):
        raise ValueError(f"Invalid value for argument `{field}`. Received: "
                         f"{field}={value!r}. Expected a bool.")
    if self.max_windows_per_batch is not None:
      checks.require_positive(self, "max_windows_per_batch")
    checks.require_positive(self, "max_probe_questions", "num_warmup_requests")
    threshold = self.null_score_diff_threshold
    if not (threshold is None or threshold == "best" or (
        checks.is_number(threshold) and math.isfinite(threshold))):
      raise ValueError(
          f"Invalid value for argument `null_score_diff_threshold`. Received: "
          f"null_score_diff_threshold={threshold!r}. Expected a finite number "
          f"or 'best' (the best_f1_thresh of the checkpoint's evaluation).")
    if not (checks.is_number(self.logits_tolerance) and
            0 <= self.logits_tolerance < math.inf):
      raise ValueError(
          f"Invalid value for argument `logits_tolerance`. Received: "
          f"logits_tolerance={self.logits_tolerance!r}. Expected a finite "
          f"number >= 0, e.g. 1e-4.")
    if not (checks.is_number(self.min_answer_agreement) and
            0 <= self.min_answer_agreement <= 1):
      raise ValueError(
          f"Invalid value for argument `min_answer_agreement`. Received: "
          f"min_answer_agreement={self.min_answer_agreement!r}. Expected a "
          f"share in [0, 1], e.g. 0.99.")
    if not isinstance(self.license, str) or not re.fullmatch(
        r"[a-z0-9][a-z0-9.+-]*", self.license):
      raise ValueError(
          f"Invalid value for argument `license`. Received: "
          f"license={self.license!r}. Expected a Hugging Face Hub license id "
          f"(lower case, e.g. 'apache-2.0', 'mit', 'cc-by-sa-4.0', 'other').")


# tfqa_export's flags, generated from these fields (tfqa.cli.config_flags):
# section -> fields. "portable" is tfqa.export.portable.PortableConfig. The
# other fields are the Python API's (tfqa.export(...)) tuning of the checks.
EXPORT_FLAG_FIELDS = {
    "export": ("model_name", "version", "overwrite", "verify",
               "max_windows_per_batch", "null_score_diff_threshold",
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
