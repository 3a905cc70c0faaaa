"""The export's manifest.json: paths, SHA-256 of every file, signatures, versions, verification."""

from __future__ import annotations

import datetime
import os
import platform

import tensorflow as tf
import tensorflow_text
import transformers

import tfqa
from tfqa import pins
from tfqa import serving
from tfqa.export import saved_model
from tfqa.inference import trained_model
from tfqa.layout import exportdir
from tfqa.layout import fs


def build_manifest(trained: trained_model.TrainedModel, *, export_dir: str,
                   model_name: str, version: int, staged_version: str,
                   staged_pretrained: str, verification: dict,
                   probe_source: str, staged_portable: str | None = None,
                   portable_report: dict | None = None,
                   max_windows_per_batch: int | None = None,
                   threshold: dict | None = None) -> dict:
  """The manifest of an export whose parts are staged (before publishing)."""
  saved_model_path = "/".join((exportdir.SAVED_MODEL_SUBDIR, model_name,
                               str(version)))
  custom_ops = serving.custom_ops_used(staged_version)
  manifest = {
      "model_name": model_name,
      "version": version,
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      # Relative to the directory holding this manifest.
      "paths": {
          "saved_model": saved_model_path,
          "pretrained": exportdir.PRETRAINED_SUBDIR,
          "warmup_requests": saved_model_path + "/" +
                             exportdir.WARMUP_FILE.replace(os.sep, "/"),
          "model_card": (f"{exportdir.PRETRAINED_SUBDIR}/"
                         f"{exportdir.MODEL_CARD_FILE}"),
      },
      "export_dir": fs.abspath(export_dir),
      "sha256": {"saved_model": exportdir.file_digests(staged_version),
                 "pretrained": exportdir.file_digests(staged_pretrained)},
      "signatures": serving.signature_specs(staged_version),
      "custom_ops": custom_ops,
      "serving": {**saved_model.serving_requirements(custom_ops),
                  "max_windows_per_batch": max_windows_per_batch},
      "versions": _versions(),
      "model_dir": fs.abspath(trained.model_dir),
      "checkpoint": trained.checkpoint,
      # As exported: decode.null_score_diff_threshold may differ from the
      # run's (see null_score_diff_threshold).
      "run_config": trained.run_config.to_dict(),
      # v2.0: the threshold serving_default applies and where it came from.
      "null_score_diff_threshold": threshold,
      "probe_source": probe_source,
      "verification": verification,
  }
  if portable_report is not None:
    # onnx/ and tflite/: their files' SHA-256, and parity, sizes and EM/F1.
    for name in fs.listdir(staged_portable):
      manifest["sha256"][name] = exportdir.file_digests(
          os.path.join(staged_portable, name))
    manifest["portable"] = portable_report
  return manifest


def _versions() -> dict:
  return {"tfqa": tfqa.__version__, "tensorflow": tf.__version__,
          "tensorflow_text": tensorflow_text.__version__,
          "transformers": transformers.__version__,
          "tensorflow_serving_api": pins.installed_version(
              "tensorflow-serving-api"),
          "python": platform.python_version()}
