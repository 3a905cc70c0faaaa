"""The export directory's layout: names, manifest reading, file digests (a leaf: the writer and every reader import it; no TensorFlow).

  export_dir/
    saved_model/<model_name>/<version>/   TF Serving (watches all-digit names)
      saved_model.pb, variables/, assets/vocab.txt
      assets.extra/tf_serving_warmup_requests
    pretrained/                           `from_pretrained` directory + card
      model.safetensors (PyTorch), tf_model.h5 (TF), config, tokenizer
    onnx/model.onnx, onnx/model.int8.onnx  with portable=... (optional)
    tflite/model.int8.tflite              with quantize="int8" (optional)
    manifest.json                         hashes, signatures, verification
    .tfqa-export                          says tfqa_export owns the above
"""

from __future__ import annotations

import hashlib
import os

from tfqa.layout import fs
from tfqa.layout import json_files

SAVED_MODEL_SUBDIR = "saved_model"
PRETRAINED_SUBDIR = "pretrained"
MANIFEST_FILE = "manifest.json"
MODEL_CARD_FILE = "README.md"
# pretrained/'s PyTorch weights (BertForQuestionAnswering names and layouts):
# what transformers 5 and PyTorch load; tf_model.h5 beside it is for
# transformers 4.x TensorFlow.
SAFETENSORS_FILE = "model.safetensors"
SAVED_MODEL_FILE = "saved_model.pb"
# TF Serving replays these PredictionLog records before it serves a version,
# so the first real request does not pay for graph warm-up.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
ONNX_SUBDIR = "onnx"
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
TFLITE_SUBDIR = "tflite"
TFLITE_INT8_FILE = "model.int8.tflite"
# Written by every export: tfqa_export owns the entries below in this
# directory and may replace them; in another directory it refuses to.
EXPORT_MARKER = ".tfqa-export"
# What an export replaces or removes at the top of export_dir (saved_model/
# only gains a version directory).
REPLACED_ENTRIES = (MANIFEST_FILE, PRETRAINED_SUBDIR, ONNX_SUBDIR,
                    TFLITE_SUBDIR)
# The SavedModel's signatures: raw text in, answers out; and model logits.
SERVING_SIGNATURE = "serving_default"
LOGITS_SIGNATURE = "predict_logits"
# Names shared by predict_logits, the ONNX graph and the TFLite model.
LOGITS_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
LOGITS_OUTPUT_NAMES = ("start_logits", "end_logits")


def read_manifest(export_dir: str) -> dict:
  """The manifest.json of an export directory.

  Raises:
    ValueError: missing, or not valid JSON.
  """
  path = os.path.join(export_dir, MANIFEST_FILE)
  if not fs.isfile(path):
    raise ValueError(f"{export_dir} has no {MANIFEST_FILE}; expected a "
                     f"directory written by tfqa_export.")
  return json_files.read_json(path, what="the export manifest")


def entries_not_ours(export_dir: str) -> list[str]:
  """REPLACED_ENTRIES present in `export_dir` that no export wrote.

  Empty for a missing or empty directory, one an export wrote to (its
  marker, or the manifest of an export made before there was a marker), and
  one holding none of REPLACED_ENTRIES.
  """
  try:
    entries = set(fs.listdir(export_dir))
  except (FileNotFoundError, NotADirectoryError):
    return []
  if EXPORT_MARKER in entries or _holds_an_export_manifest(export_dir):
    return []
  return sorted(entries & set(REPLACED_ENTRIES))


def _holds_an_export_manifest(export_dir):
  """Whether manifest.json is tfqa_export's (the name is a common one)."""
  try:
    manifest = read_manifest(export_dir)
  except (ValueError, OSError):
    return False
  return isinstance(manifest, dict) and {"model_name", "paths",
                                         "sha256"} <= manifest.keys()


def mark_as_export_dir(export_dir: str) -> None:
  """Creates `export_dir` if needed and writes the marker (once)."""
  path = os.path.join(export_dir, EXPORT_MARKER)
  if not fs.exists(path):
    json_files.atomic_write_text(
        path, "Written by tfqa_export: it may replace manifest.json, "
              "pretrained/, onnx/ and tflite/ here.\n")


def file_digests(directory: str) -> dict[str, str]:
  """SHA-256 of every file under `directory`, keyed by '/'-separated path."""
  return {relative: file_digest(os.path.join(directory, relative))
          for relative in fs.walk_files(directory)}


def file_digest(path: str) -> str:
  """SHA-256 (hex) of one file."""
  digest = hashlib.sha256()
  with fs.open_file(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def existing_versions(models_dir: str) -> list[int]:
  """The version numbers (all-digit subdirectories) of a model, ascending."""
  if not fs.isdir(models_dir):
    return []
  return sorted(int(name) for name in fs.listdir(models_dir)
                if name.isdigit() and
                fs.isdir(os.path.join(models_dir, name)))


def next_version(models_dir: str) -> int:
  """1 + the largest existing version number (1 for a new model)."""
  return max(existing_versions(models_dir), default=0) + 1
