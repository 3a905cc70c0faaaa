"""Exports a training run for deployment: TF Serving SavedModel, Hugging Face copy, verification, manifest.

Layout of an export directory:

  export_dir/
    saved_model/<model_name>/<version>/   TF Serving (watches all-digit names)
      saved_model.pb, variables/, assets/vocab.txt
      assets.extra/tf_serving_warmup_requests
    pretrained/                           `from_pretrained` directory + card
    manifest.json                         hashes, signatures, verification

Everything is built in hidden temp directories, checked there, and renamed
into place only when every check passed, so a server or reader never sees a
half-written version.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import itertools
import json
import math
import os
import platform
import re
import shutil
import tempfile
from typing import Callable, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

import tfqa
from tfqa import answers
from tfqa import config as config_lib
from tfqa import data as data_lib
from tfqa import evaluation
from tfqa import exportdir
from tfqa import features as features_lib
from tfqa import input_pipeline
from tfqa import io_utils
from tfqa import onnx_export
from tfqa import preflight
from tfqa import rundir
from tfqa import sample
from tfqa import serving_graph
from tfqa import trained_model

DEFAULT_MODEL_NAME = "tfqa"
# Windows per model call in serving_default. On CPUs, small length-sorted
# chunks answer a batch of questions faster than one batch padded to its
# longest window (BENCHMARKS.md); accelerators prefer larger ones.
DEFAULT_MAX_WINDOWS_PER_BATCH = 8
# The export directory's layout (readers import it from tfqa.exportdir).
SAVED_MODEL_SUBDIR = exportdir.SAVED_MODEL_SUBDIR
PRETRAINED_SUBDIR = exportdir.PRETRAINED_SUBDIR
MANIFEST_FILE = exportdir.MANIFEST_FILE
MODEL_CARD_FILE = exportdir.MODEL_CARD_FILE
SERVING_SIGNATURE = exportdir.SERVING_SIGNATURE
LOGITS_SIGNATURE = exportdir.LOGITS_SIGNATURE
WARMUP_FILE = exportdir.WARMUP_FILE
read_manifest = exportdir.read_manifest
file_digests = exportdir.file_digests
signature_specs = exportdir.signature_specs
existing_versions = exportdir.existing_versions
next_version = exportdir.next_version
NUM_WARMUP_REQUESTS = 4
# Verification: questions checked, largest tolerated |logit difference|
# between the checkpoint, the SavedModel and the reloaded pretrained copy,
# and the share of questions on which the graph must give the Python answer.
MAX_PROBE_QUESTIONS = 200
LOGITS_TOLERANCE = 1e-4
MIN_ANSWER_AGREEMENT = 0.99
# Questions per serving_default call while verifying (bounds memory).
_PROBE_BATCH_SIZE = 16
# Disagreements quoted in an ExportVerificationError message (all of them
# are in its `verification` attribute).
_MAX_QUOTED_DISAGREEMENTS = 20
# A model name becomes a directory name and a TF Serving model name.
_MODEL_NAME_REGEX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# tensorflow/serving RELEASE.md: 2.0.0 linked only some TF Text ops (no
# RegexSplitWithOffsets, tensorflow/text#200); 2.2.0 "Update TF Text to
# v2.2.0" links the full TF Text op library into the model server.
_TF_TEXT_OPS_IN_SERVING_SINCE = "2.2.0"


class ExportVerificationError(ValueError):
  """The exported model does not reproduce the trained one; nothing published.

  Attributes:
    verification: the verification results (max diffs, agreement, every
      disagreement), as they would have gone into the manifest.
  """

  def __init__(self, message: str, verification: dict):
    super().__init__(message)
    self.verification = verification


@dataclasses.dataclass(frozen=True)
class ExportResult:
  """Where an export went and how its verification came out."""

  # The TF Serving version directory (export_dir/saved_model/<name>/<version>).
  saved_model_dir: str
  # The `from_pretrained` directory (export_dir/pretrained).
  pretrained_dir: str
  # export_dir/manifest.json.
  manifest_path: str
  # Max logit diffs, answer agreement and disagreements; {"skipped": True}
  # when verification was turned off.
  verification: dict
  # The manifest's "portable" section (ONNX/TFLite paths, parity, quality
  # of quantized models); None without them.
  portable: dict | None = None


def export_model(*, model_dir: str, export_dir: str,
                 model_name: str = DEFAULT_MODEL_NAME,
                 version: int | None = None, overwrite: bool = False,
                 verify: bool = True, probe_file: str | None = None,
                 checkpoint: str | None = None,
                 portable: onnx_export.PortableConfig | None = None,
                 max_windows_per_batch: int | None = (
                     DEFAULT_MAX_WINDOWS_PER_BATCH),
                 null_score_diff_threshold: float | str | None = None
                 ) -> ExportResult:
  """Exports a run's checkpoint as a TF Serving SavedModel and a HF directory.

  Args:
    model_dir: a tfqa_train --model_dir.
    export_dir: where saved_model/, pretrained/ and manifest.json go.
    model_name: the TF Serving model name (a directory name).
    version: the version number; defaults to 1 + the largest existing one.
    overwrite: replace an existing version directory. (pretrained/ and
      manifest.json always describe the newest export and are replaced.)
    verify: check the export against the checkpoint before publishing it.
    probe_file: SQuAD JSON whose questions (at most MAX_PROBE_QUESTIONS) the
      verification and the warm-up requests use; defaults to the run's
      eval_file, else the bundled sample.
    checkpoint: a checkpoint prefix; defaults to the newest readable one.
    max_windows_per_batch: windows per model call in serving_default
      (length-sorted chunks); None runs all windows of a request at once.
    portable: also write onnx/ (and, quantized, tflite/) from the
      predict_logits signature, checked on the probe set (see onnx_export);
      an export without them removes those of an older export.
    null_score_diff_threshold: SQuAD v2.0 runs: the no-answer threshold
      the export applies (serving_default, verification, ONNX settings);
      None keeps the run's, "best" takes the `best_f1_thresh` of the
      exported checkpoint's evaluation (see best_null_threshold). Recorded
      in the manifest and the model card.

  Returns:
    The ExportResult.

  Raises:
    ValueError: an invalid argument, an existing version directory without
      `overwrite`, a run that cannot be loaded, or a threshold that does not
      apply (a v1.1 run; "best" without an evaluation of the checkpoint).
    ExportVerificationError: the export does not reproduce the checkpoint.
    onnx_export.PortableExportError: an ONNX model does not reproduce the
      SavedModel, or a quantized one loses too much F1.
    paths.PathError (a ValueError): an input or `export_dir` of the wrong
      kind (see preflight.check_export), before anything is written.
  """
  _validate_arguments(model_name=model_name, version=version,
                      overwrite=overwrite, verify=verify)
  _check_threshold_value(null_score_diff_threshold)
  preflight.check_export(model_dir, export_dir=export_dir,
                         probe_file=probe_file, checkpoint=checkpoint)
  models_dir = os.path.join(export_dir, SAVED_MODEL_SUBDIR, model_name)
  recover_interrupted(export_dir, models_dir)
  if version is None:
    version = next_version(models_dir)
  version_dir = os.path.join(models_dir, str(version))
  pretrained_dir = os.path.join(export_dir, PRETRAINED_SUBDIR)
  if not overwrite:
    _refuse_existing(version_dir, models_dir)

  trained = trained_model.load(model_dir, checkpoint=checkpoint)
  trained, threshold = with_null_threshold(trained, null_score_diff_threshold)
  probe_source, probe = probe_examples(probe_file, trained.run_config)
  os.makedirs(models_dir, exist_ok=True)
  # TF Serving only loads all-digit directory names: it never sees these.
  staged_version = os.path.join(models_dir, f".tmp-{version}-{os.getpid()}")
  staged_pretrained = os.path.join(export_dir,
                                   f".tmp-{PRETRAINED_SUBDIR}-{os.getpid()}")
  staged_portable = os.path.join(export_dir, f".tmp-portable-{os.getpid()}")
  try:
    _save_saved_model(trained, staged_version,
                      max_windows_per_batch=max_windows_per_batch)
    write_warmup_requests(os.path.join(staged_version, WARMUP_FILE), probe,
                          model_name=model_name)
    _save_pretrained(trained, staged_pretrained)
    if verify:
      verification = verify_export(
          trained, saved_model_dir=staged_version,
          pretrained_dir=staged_pretrained, examples=probe,
          probe_source=probe_source)
    else:
      verification = {"skipped": True}
    portable_report = None
    if portable is not None and portable.enabled:
      portable_report = onnx_export.build_portable(
          saved_model_dir=staged_version, staging_dir=staged_portable,
          examples=probe, tokenizer=trained.tokenizer,
          run_config=trained.run_config, probe_source=probe_source,
          portable=portable)
    io_utils.atomic_write_text(
        os.path.join(staged_pretrained, MODEL_CARD_FILE),
        model_card(trained, model_name=model_name, version=version,
                   verification=verification, threshold=threshold))
    manifest = _manifest(
        trained, export_dir=export_dir, model_name=model_name,
        version=version, staged_version=staged_version,
        staged_pretrained=staged_pretrained, verification=verification,
        probe_source=probe_source, staged_portable=staged_portable,
        portable_report=portable_report,
        max_windows_per_batch=max_windows_per_batch, threshold=threshold)
    _publish(staged_version, version_dir, overwrite=overwrite)
    try:
      # pretrained/ mirrors the newest export: replaced whole, atomically.
      _publish(staged_pretrained, pretrained_dir, overwrite=True)
      _publish_portable(staged_portable, export_dir)
    except BaseException:
      # Keep the export all-or-nothing: take the new version back out.
      shutil.rmtree(version_dir, ignore_errors=True)
      raise
    manifest_path = os.path.join(export_dir, MANIFEST_FILE)
    io_utils.atomic_write_json(manifest_path, manifest)
  finally:
    for staged in (staged_version, staged_pretrained, staged_portable):
      shutil.rmtree(staged, ignore_errors=True)
  return ExportResult(saved_model_dir=version_dir,
                      pretrained_dir=pretrained_dir,
                      manifest_path=manifest_path, verification=verification,
                      portable=portable_report)


def with_null_threshold(trained: trained_model.TrainedModel,
                        value: float | str | None
                        ) -> tuple[trained_model.TrainedModel, dict | None]:
  """The model with the no-answer threshold to export, and its record.

  Args:
    trained: the loaded run.
    value: None (the run's threshold), a number, or "best" (see
      best_null_threshold).

  Returns:
    (trained with run_config.decode.null_score_diff_threshold set, the
    manifest's record {"value", "source", "run_value"}); the record is None
    for a v1.1 run, which never predicts no answer.

  Raises:
    ValueError: a value that is neither a finite number nor "best"; a
      threshold for a v1.1 run; "best" without an evaluation.
  """
  decode = trained.run_config.decode
  if value is None:
    if not decode.version_2_with_negative:
      return trained, None
    return trained, {"value": decode.null_score_diff_threshold,
                     "source": "run_config",
                     "run_value": decode.null_score_diff_threshold}
  _check_threshold_value(value)
  if not decode.version_2_with_negative:
    raise ValueError(
        f"null_score_diff_threshold={value!r} applies to SQuAD v2.0 models, "
        f"but the run in {trained.model_dir} is v1.1-style "
        f"(version_2_with_negative is false): it always answers. Drop the "
        f"threshold.")
  if value == "best":
    value, source = best_null_threshold(trained.model_dir,
                                        trained.checkpoint)
  else:
    value, source = float(value), "export argument"
  new_decode = dataclasses.replace(decode, null_score_diff_threshold=value)
  trained = dataclasses.replace(trained, run_config=dataclasses.replace(
      trained.run_config, decode=new_decode))
  return trained, {"value": value, "source": source,
                   "run_value": decode.null_score_diff_threshold}


def best_null_threshold(model_dir: str, checkpoint: str) -> tuple[float, str]:
  """The measured best v2.0 threshold of a checkpoint, and where it is from.

  Reads `best_f1_thresh` from MODEL_DIR/eval/<checkpoint>/eval_results.json
  (written by tfqa_eval), else from MODEL_DIR/eval/eval_results.json when it
  evaluated the same checkpoint (the end of tfqa_train). The official v2.0
  metric takes it from the eval questions' null odds (null_odds.json, beside
  it): questions whose odds are at most it are answered, the others not.
  Exactly at one question's odds, float rounding in the SavedModel could
  flip that question, so the threshold returned lies midway between it and
  the next larger odds (best_f1_thresh + 1 when there are none): the same
  answers on the eval questions, ties of odds aside. When answering nothing
  scored best (best_f1_thresh is then the search's 0.0, no question's
  odds), it is 1 below the smallest odds. The measure is made with the
  predictions of the run's threshold, so it ranks thresholds at or below
  that one.

  Raises:
    ValueError: no evaluation of this checkpoint, or one without
      best_f1_thresh or null_odds.json.
  """
  name = os.path.basename(checkpoint)
  eval_dir = os.path.join(model_dir, rundir.EVAL_SUBDIR)
  seen = []
  for out_dir in (os.path.join(eval_dir, name), eval_dir):
    path = os.path.join(out_dir, evaluation.RESULTS_FILE)
    if not os.path.isfile(path):
      continue
    results = io_utils.read_json(path, what="the evaluation results")
    evaluated = os.path.basename(str(results.get("checkpoint", "")))
    if evaluated != name:
      seen.append(f"{path} evaluated {evaluated or 'an unnamed checkpoint'}")
      continue
    best = results.get("best_f1_thresh")
    odds_path = os.path.join(out_dir, evaluation.NULL_ODDS_FILE)
    if not _is_finite_number(best) or not os.path.isfile(odds_path):
      raise ValueError(f"{path} has no usable best_f1_thresh (found "
                       f"{best!r}) or no {evaluation.NULL_ODDS_FILE} beside "
                       f"it; re-run tfqa_eval, or pass a number.")
    odds = [x for x in io_utils.read_json(
        odds_path, what="the null odds").values() if _is_finite_number(x)]
    if odds and best not in odds:
      # The search's starting point: answering nothing scored best.
      return float(min(odds) - 1.0), (
          f"best_f1_thresh of {path}: answering no question of that "
          f"evaluation scored best, so below all its null odds")
    above = [x for x in odds if x > best]
    value = (best + min(above)) / 2 if above else best + 1.0
    return float(value), (f"best_f1_thresh {best:.6g} of {path}, moved "
                          f"midway to the next null odds")
  found = "; ".join(seen) if seen else "found none"
  raise ValueError(
      f"null_score_diff_threshold='best' needs an evaluation of checkpoint "
      f"{name} in {eval_dir} ({found}). Run `tfqa_eval --model_dir="
      f"{model_dir} --checkpoint={checkpoint}` first, or pass a number.")


def _check_threshold_value(value):
  if not (value is None or value == "best" or _is_finite_number(value)):
    raise ValueError(
        f"Invalid value for argument `null_score_diff_threshold`. Received: "
        f"null_score_diff_threshold={value!r}. Expected a finite number or "
        f"'best' (the best_f1_thresh of the checkpoint's evaluation).")


def _is_finite_number(value) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool) and
          math.isfinite(value))


def _validate_arguments(*, model_name, version, overwrite, verify):
  if not isinstance(model_name, str) or not _MODEL_NAME_REGEX.fullmatch(
      model_name) or model_name.isdigit():
    raise ValueError(
        f"Invalid value for argument `model_name`. Received: "
        f"model_name={model_name!r}. Expected a TF Serving model name: "
        f"letters, digits, '_', '.' or '-', not starting with a symbol and "
        f"not all digits. Pass e.g. model_name='tfqa'.")
  if version is not None and (not isinstance(version, int) or
                              isinstance(version, bool) or version < 1):
    raise ValueError(
        f"Invalid value for argument `version`. Received: "
        f"version={version!r}. Expected a positive integer (TF Serving "
        f"version directory), or None for the next free version.")
  for name, value in (("overwrite", overwrite), ("verify", verify)):
    if not isinstance(value, bool):
      raise ValueError(f"Invalid value for argument `{name}`. Received: "
                       f"{name}={value!r}. Expected a bool.")


def _refuse_existing(version_dir, models_dir):
  if os.path.exists(version_dir):
    raise ValueError(
        f"{version_dir} already exists and is never overwritten by default. "
        f"Pass overwrite=True (--overwrite) to replace it, or leave the "
        f"version unset to write version {next_version(models_dir)}.")


def probe_examples(probe_file: str | None, run_config: config_lib.RunConfig
                   ) -> tuple[str, tuple[data_lib.SquadExample, ...]]:
  """(source, at most MAX_PROBE_QUESTIONS examples) to check an export with.

  The source is `probe_file`, else the run's eval_file, else the bundled
  sample (offline, so runs trained from TFDS can be checked too).

  Raises:
    ValueError: the source holds no examples.
    FileNotFoundError: the file does not exist.
  """
  source = probe_file or run_config.data.eval_file or sample.sample_path()
  examples = data_lib.load_squad_json(source).examples[:MAX_PROBE_QUESTIONS]
  if not examples:
    raise ValueError(f"Probe file {source} holds no usable questions. Pass "
                     f"--probe_file with a SQuAD JSON file that has some.")
  return source, examples


class _ModelLogits(tf.Module):
  """`logits_fn` of the serving module: the HF model's float32 logits.

  Only the model's variables are tracked, not the Keras model: saving a
  Keras model traces every layer's call functions into the SavedModel
  (several times slower to save, larger, and never used by the signatures).
  """

  def __init__(self, model):
    super().__init__(name="model_logits")
    self.model_variables = list(model.variables)
    self._call = lambda inputs: model(inputs, training=False)

  def __call__(self, input_ids, attention_mask, token_type_ids):
    outputs = self._call({"input_ids": input_ids,
                          "attention_mask": attention_mask,
                          "token_type_ids": token_type_ids})
    return (tf.cast(outputs.start_logits, tf.float32),
            tf.cast(outputs.end_logits, tf.float32))


def serving_module(trained: trained_model.TrainedModel, vocab_file: str, *,
                   max_windows_per_batch: int | None = (
                       DEFAULT_MAX_WINDOWS_PER_BATCH)
                   ) -> serving_graph.QAServingModule:
  """The raw-text QA module of a run (its vocab, casing, windows, decoding)."""
  return serving_graph.QAServingModule(
      logits_fn=_ModelLogits(trained.model), vocab_file=vocab_file,
      do_lower_case=bool(trained.tokenizer.do_lower_case),
      feature_config=trained.run_config.features,
      decode_config=trained.run_config.decode,
      max_windows_per_batch=max_windows_per_batch)


def _save_saved_model(trained, directory, *, max_windows_per_batch):
  vocab_file = os.path.join(trained.model_dir, rundir.TOKENIZER_SUBDIR,
                            "vocab.txt")
  with tempfile.TemporaryDirectory() as scratch:
    if not os.path.isfile(vocab_file):
      # A tokenizer saved as tokenizer.json only: write its vocab out (the
      # SavedModel keeps its own copy as an asset).
      vocab_file = trained.tokenizer.save_vocabulary(scratch)[0]
    module = serving_module(trained, vocab_file,
                            max_windows_per_batch=max_windows_per_batch)
    tf.saved_model.save(module, directory, signatures={
        SERVING_SIGNATURE: module.answer.get_concrete_function(),
        LOGITS_SIGNATURE: module.predict_logits.get_concrete_function(),
    })


def warmup_records(examples: Sequence[data_lib.SquadExample], *,
                   model_name: str) -> list[bytes]:
  """Serialized PredictionLog records: one serving_default request each.

  Uses the first NUM_WARMUP_REQUESTS examples (real questions and contexts,
  so warm-up runs the same windows and decoding as traffic).
  """
  # Imported here: only exports need the TF Serving protos.
  from tensorflow_serving.apis import model_pb2  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=import-outside-toplevel

  records = []
  for example in examples[:NUM_WARMUP_REQUESTS]:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
        name=model_name, signature_name=SERVING_SIGNATURE))
    request.inputs["question"].CopyFrom(
        tf.make_tensor_proto([example.question], dtype=tf.string))
    request.inputs["context"].CopyFrom(
        tf.make_tensor_proto([example.context], dtype=tf.string))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))
    records.append(log.SerializeToString())
  return records


def write_warmup_requests(path: str,
                          examples: Sequence[data_lib.SquadExample], *,
                          model_name: str) -> None:
  """Writes `warmup_records` as the TFRecord file TF Serving looks for."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path) as writer:
    for record in warmup_records(examples, model_name=model_name):
      writer.write(record)


def _save_pretrained(trained, directory):
  """`save_pretrained` model (tf_model.h5 + config.json) and tokenizer."""
  # The serving model was built without dropout; the config written here is
  # the run's architecture, so fine-tuning from this directory gets the
  # dropout the run trained with (inference ignores it either way).
  with open(os.path.join(trained.model_dir, rundir.BERT_CONFIG_FILE),
            encoding="utf-8") as f:
    architecture = json.load(f)
  for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
    if name in architecture:
      setattr(trained.model.config, name, architecture[name])
  trained.model.save_pretrained(directory)
  trained.tokenizer.save_pretrained(directory)


def verify_export(trained: trained_model.TrainedModel, *,
                  saved_model_dir: str, pretrained_dir: str,
                  examples: Sequence[data_lib.SquadExample],
                  probe_source: str) -> dict:
  """Checks an export against the checkpoint it was made from.

  (a) The start/end logits of every probe window from the checkpoint model,
  the SavedModel's predict_logits signature, the reloaded pretrained
  directory (and PyTorch's reload of it, when torch is installed) agree
  within LOGITS_TOLERANCE. (b) serving_default's answers equal the Python
  path's (HF tokenizer windows + answers.decode_predictions over the
  checkpoint's logits) on at least MIN_ANSWER_AGREEMENT of the questions.

  Returns:
    The results: probe size, max |diff| per pair of models, agreement rate
    and every disagreement (id, graph answer, python answer).

  Raises:
    ExportVerificationError: a check failed; the message has the numbers.
  """
  import transformers  # pylint: disable=import-outside-toplevel

  run_config = trained.run_config
  windows = features_lib.build_features(examples, trained.tokenizer,
                                        run_config.features)
  batching = dict(batch_size=run_config.train.eval_batch_size,
                  max_seq_length=run_config.features.max_seq_length,
                  pipeline_config=run_config.pipeline)
  logits = {"checkpoint": evaluation.window_logits(trained.model, windows,
                                                   **batching)}
  loaded = tf.saved_model.load(saved_model_dir)
  logits_signature = loaded.signatures[LOGITS_SIGNATURE]
  logits["saved_model"] = _batched_logits(
      lambda ids, mask, types: _signature_call(logits_signature, ids, mask,
                                               types), windows, **batching)
  reloaded = transformers.TFBertForQuestionAnswering.from_pretrained(
      pretrained_dir, local_files_only=True, hidden_dropout_prob=0.0,
      attention_probs_dropout_prob=0.0)
  logits["pretrained"] = evaluation.window_logits(reloaded, windows,
                                                  **batching)
  torch_logits = _torch_logits(pretrained_dir, windows, batching)
  if torch_logits is not None:
    logits["pytorch"] = torch_logits
  diffs = {f"{a}_vs_{b}": _max_abs_diff(logits[a], logits[b])
           for a, b in itertools.combinations(logits, 2)}

  python_answers = answers.decode_predictions(
      examples, windows, *logits["checkpoint"], run_config.decode).texts()
  graph_answers = _graph_answers(loaded.signatures[SERVING_SIGNATURE],
                                 examples)
  disagreements = [
      {"id": e.id, "graph": graph_answers[i], "python": python_answers[e.id]}
      for i, e in enumerate(examples)
      if graph_answers[i] != python_answers[e.id]]
  agreement = 1.0 - len(disagreements) / len(examples)
  verification = {
      "probe_source": probe_source,
      "probe_questions": len(examples),
      "probe_windows": len(windows),
      "logits_max_abs_diff": diffs,
      "logits_tolerance": LOGITS_TOLERANCE,
      "torch": ("not installed" if torch_logits is None else
                "checked: BertForQuestionAnswering(config) + "
                "load_tf2_checkpoint_in_pytorch_model(tf_model.h5)"),
      "answer_agreement": agreement,
      "min_answer_agreement": MIN_ANSWER_AGREEMENT,
      "disagreements": disagreements,
  }
  failures = [f"logits {pair}: max |diff| {diff:.3g} > {LOGITS_TOLERANCE:g}"
              for pair, diff in diffs.items() if not diff <= LOGITS_TOLERANCE]
  if agreement < MIN_ANSWER_AGREEMENT:
    quoted = "; ".join(f"{d['id']}: graph {d['graph']!r} vs python "
                       f"{d['python']!r}"
                       for d in disagreements[:_MAX_QUOTED_DISAGREEMENTS])
    more = len(disagreements) - _MAX_QUOTED_DISAGREEMENTS
    failures.append(
        f"serving_default agrees with the Python answers on "
        f"{agreement:.1%} of {len(examples)} questions (expected >= "
        f"{MIN_ANSWER_AGREEMENT:.0%}); disagreements: {quoted}"
        + (f" and {more} more" if more > 0 else ""))
  verification["passed"] = not failures
  if failures:
    raise ExportVerificationError(
        f"Export verification failed on {len(examples)} probe questions "
        f"from {probe_source}: " + " | ".join(failures) + ". Nothing was "
        "published. The exported model would answer differently from the "
        "checkpoint; rerun with --noverify only to inspect such an export.",
        verification)
  return verification


def _signature_call(signature, input_ids, attention_mask, token_type_ids):
  out = signature(input_ids=tf.cast(input_ids, tf.int32),
                  attention_mask=tf.cast(attention_mask, tf.int32),
                  token_type_ids=tf.cast(token_type_ids, tf.int32))
  return out["start_logits"], out["end_logits"]


def _batched_logits(logits_fn: Callable, windows: features_lib.Features, *,
                    batch_size, max_seq_length, pipeline_config):
  """Unpadded logits of every window from `logits_fn(ids, mask, types)`."""
  dataset = input_pipeline.eval_dataset(
      windows, batch_size=batch_size, max_seq_length=max_seq_length,
      pipeline_config=pipeline_config)
  lengths = windows.lengths
  starts, ends = [None] * len(windows), [None] * len(windows)
  for batch in dataset:
    start, end = logits_fn(batch["input_ids"], batch["attention_mask"],
                           batch["token_type_ids"])
    start, end = np.asarray(start), np.asarray(end)
    for row, window in enumerate(batch["window_index"].numpy()):
      starts[window] = start[row, :lengths[window]]
      ends[window] = end[row, :lengths[window]]
  return starts, ends


def _torch_logits(pretrained_dir, windows, batching):
  """PyTorch's reload of the pretrained directory, or None without torch."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  import transformers  # pylint: disable=import-outside-toplevel
  from transformers import modeling_tf_pytorch_utils  # pylint: disable=import-outside-toplevel

  # transformers 4.57.6 with torch 2.13: from_pretrained(..., from_tf=True)
  # leaves every parameter on the "meta" device (its TF->PT copy is a no-op),
  # so build the model on the CPU and load the TF weights into it directly.
  model = transformers.BertForQuestionAnswering(
      transformers.BertConfig.from_pretrained(pretrained_dir))
  modeling_tf_pytorch_utils.load_tf2_checkpoint_in_pytorch_model(
      model, os.path.join(pretrained_dir, "tf_model.h5"))
  model.eval()

  def logits_fn(input_ids, attention_mask, token_type_ids):
    with torch.no_grad():
      out = model(input_ids=torch.as_tensor(input_ids.numpy(),
                                            dtype=torch.long),
                  attention_mask=torch.as_tensor(attention_mask.numpy(),
                                                 dtype=torch.long),
                  token_type_ids=torch.as_tensor(token_type_ids.numpy(),
                                                 dtype=torch.long))
    return (out.start_logits.float().numpy(),
            out.end_logits.float().numpy())

  return _batched_logits(logits_fn, windows, **batching)


def _max_abs_diff(a, b) -> float:
  """Largest |difference| over every unpadded start and end logit."""
  worst = 0.0
  for side_a, side_b in zip(a, b):
    for x, y in zip(side_a, side_b):
      worst = max(worst, float(np.max(np.abs(np.asarray(x, np.float64) -
                                              np.asarray(y, np.float64)),
                                       initial=0.0)))
  return worst


def _graph_answers(signature, examples) -> list[str]:
  texts = []
  for lo in range(0, len(examples), _PROBE_BATCH_SIZE):
    chunk = examples[lo:lo + _PROBE_BATCH_SIZE]
    out = signature(question=tf.constant([e.question for e in chunk]),
                    context=tf.constant([e.context for e in chunk]))
    texts.extend(a.decode("utf-8") for a in out["answer"].numpy())
  return texts


def serving_requirements(custom_ops: Sequence[str]) -> dict:
  """What a TF Serving model server needs to load this export."""
  major, minor = tf.__version__.split(".")[:2]
  return {
      "oldest_tf_serving": f"{major}.{minor}.0",
      "note": (
          f"Written by TensorFlow {tf.__version__}: SavedModels load in the "
          f"same or newer TensorFlow, so use tensorflow/serving >= "
          f"{major}.{minor}. The graph uses the TF Text ops "
          f"{', '.join(custom_ops) or '(none)'}; official TF Serving "
          f"binaries and images link the TF Text op library since "
          f"{_TF_TEXT_OPS_IN_SERVING_SINCE} (tensorflow/serving RELEASE.md; "
          f"2.0.0 had only some TF Text ops, without "
          f"RegexSplitWithOffsets). A custom model server must link "
          f"@org_tensorflow_text//tensorflow_text:ops_lib. Not verified "
          f"against a running model server here."),
      "verified_with_model_server": False,
  }


def _versions() -> dict:
  import tensorflow_text  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel

  return {"tfqa": tfqa.__version__, "tensorflow": tf.__version__,
          "tensorflow_text": tensorflow_text.__version__,
          "transformers": transformers.__version__,
          "tensorflow_serving_api": _package_version(
              "tensorflow-serving-api"),
          "python": platform.python_version()}


def _package_version(name):
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


def _publish_portable(staged_portable, export_dir):
  """Moves the staged onnx/ and tflite/ in; drops those an export lacks.

  They always describe the newest export, like pretrained/.
  """
  for name in (onnx_export.ONNX_SUBDIR,
               onnx_export.TFLITE_SUBDIR):
    staged, final = (os.path.join(staged_portable, name),
                     os.path.join(export_dir, name))
    if os.path.isdir(staged):
      _publish(staged, final, overwrite=True)
    else:
      shutil.rmtree(final, ignore_errors=True)


def _manifest(trained, *, export_dir, model_name, version, staged_version,
              staged_pretrained, verification, probe_source,
              staged_portable=None, portable_report=None,
              max_windows_per_batch=None, threshold=None) -> dict:
  saved_model_path = "/".join((SAVED_MODEL_SUBDIR, model_name, str(version)))
  custom_ops = serving_graph.custom_ops_used(staged_version)
  manifest = {
      "model_name": model_name,
      "version": version,
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      # Relative to the directory holding this manifest.
      "paths": {
          "saved_model": saved_model_path,
          "pretrained": PRETRAINED_SUBDIR,
          "warmup_requests": saved_model_path + "/" +
                             WARMUP_FILE.replace(os.sep, "/"),
          "model_card": f"{PRETRAINED_SUBDIR}/{MODEL_CARD_FILE}",
      },
      "export_dir": os.path.abspath(export_dir),
      "sha256": {"saved_model": file_digests(staged_version),
                 "pretrained": file_digests(staged_pretrained)},
      "signatures": signature_specs(staged_version),
      "custom_ops": custom_ops,
      "serving": {**serving_requirements(custom_ops),
                  "max_windows_per_batch": max_windows_per_batch},
      "versions": _versions(),
      "model_dir": os.path.abspath(trained.model_dir),
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
    for name in sorted(os.listdir(staged_portable)):
      manifest["sha256"][name] = file_digests(
          os.path.join(staged_portable, name))
    manifest["portable"] = portable_report
  return manifest


# Staging (".tmp-NAME-PID") and replaced (".old-NAME-PID") directories.
_LEFTOVER_REGEX = re.compile(r"\.(tmp|old)-(.+)-(\d+)")


def recover_interrupted(export_dir: str, models_dir: str) -> list[str]:
  """Cleans up after exports that were killed; returns what it did.

  A killed export leaves its hidden staging directories behind, and one
  killed inside `_publish` between its two renames leaves the previous
  directory renamed aside with nothing in its place. Directories of a
  process that is still running (another export) are left alone. An aside
  directory whose place is empty is renamed back (so the previous export is
  whole again); every other leftover is deleted.
  """
  actions = []
  for parent in (export_dir, models_dir):
    if not os.path.isdir(parent):
      continue
    for name in sorted(os.listdir(parent)):
      match = _LEFTOVER_REGEX.fullmatch(name)
      if match is None or _process_alive(int(match.group(3))):
        continue
      path = os.path.join(parent, name)
      original = os.path.join(parent, match.group(2))
      if match.group(1) == "old" and not os.path.exists(original):
        os.rename(path, original)
        actions.append(f"restored {original}")
      else:
        shutil.rmtree(path, ignore_errors=True)
        actions.append(f"removed {path}")
  for action in actions:
    logging.warning("Interrupted export: %s", action)
  return actions


def _process_alive(pid: int) -> bool:
  if pid == os.getpid():
    return True
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # someone else's live process
  return True


def _publish(staged: str, final: str, *, overwrite: bool) -> None:
  """Renames `staged` to `final`; replaces an existing `final` if allowed.

  A replacement renames the old directory aside, renames the new one in and
  only then deletes the old one, so `final` is always one whole version.
  """
  if not os.path.exists(final):
    os.rename(staged, final)
    return
  if not overwrite:
    raise ValueError(f"{final} appeared while exporting (another export?); "
                     f"it was left as it is. Pass overwrite=True to replace "
                     f"it.")
  parent, name = os.path.split(final)
  # Not all digits, so TF Serving ignores it too.
  aside = os.path.join(parent, f".old-{name}-{os.getpid()}")
  os.rename(final, aside)
  try:
    os.rename(staged, final)
  except BaseException:
    os.rename(aside, final)
    raise
  shutil.rmtree(aside, ignore_errors=True)


def model_card(trained: trained_model.TrainedModel, *, model_name: str,
               version: int, verification: dict,
               threshold: dict | None = None) -> str:
  """The pretrained directory's README.md: data, settings, results, checks."""
  run_config = trained.run_config
  data = run_config.data
  model = run_config.model
  lines = [
      "---",
      "library_name: transformers",
      "pipeline_tag: question-answering",
      "tags: [tfqa, bert, question-answering, squad, tensorflow]",
      "---",
      "",
      f"# {model_name} (version {version})",
      "",
      f"`TFBertForQuestionAnswering` fine-tuned for extractive question "
      f"answering with tfqa {tfqa.__version__}, exported from checkpoint "
      f"`{os.path.basename(trained.checkpoint)}`.",
      "",
      "## Training data",
      "",
  ]
  if data.tfds_dataset:
    lines.append(f"- TFDS dataset: `{data.tfds_dataset}` (train split)")
  if data.train_file:
    lines.append(f"- Train file: `{data.train_file}`")
  lines.append(f"- Eval file: `{data.eval_file}`" if data.eval_file else
               "- Eval file: none" + (" (TFDS validation split)"
                                      if data.tfds_dataset else ""))
  lines.append("- Format: SQuAD " + (
      "v2.0 (unanswerable questions get an empty answer)"
      if run_config.decode.version_2_with_negative else "v1.1"))
  if data.answerable_only:
    lines.append("- Unanswerable training questions dropped "
                 "(answerable_only)")
  lines += ["", "## Model", "",
            f"- Initialised from: `{model.model or model.bert_config_file}`"]
  lines += ["", "## Hyper-parameters", "", "| setting | value |",
            "|---|---|"]
  for section in ("train", "features", "pipeline", "decode"):
    for name, value in dataclasses.asdict(getattr(run_config,
                                                  section)).items():
      lines.append(f"| {section}.{name} | {value} |")
  lines += ["", "## Evaluation", ""]
  results = _eval_results(trained.model_dir)
  if results is None:
    lines.append("No evaluation results were recorded for this run.")
  else:
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {key} | {_format_value(value)} |"
              for key, value in results.items()]
  if threshold is not None:
    lines += ["", "## No-answer threshold", "",
              f"The model answers nothing when the no-answer score beats "
              f"the best span's score by more than "
              f"**{threshold['value']:.6g}** "
              f"(decode.null_score_diff_threshold; source: "
              f"{threshold['source']}). The run, and its evaluation above, "
              f"used {threshold['run_value']:.6g}."]
  lines += ["", "## Export verification", ""]
  if verification.get("skipped"):
    lines.append("Not verified (exported with --noverify).")
  else:
    lines.append(
        f"On {verification['probe_questions']} questions of "
        f"`{verification['probe_source']}`: max |logit difference| "
        + ", ".join(f"{pair} {diff:.2g}" for pair, diff in
                    verification["logits_max_abs_diff"].items())
        + f"; the SavedModel's serving_default answers equal the Python "
        f"answers on "
        f"{verification['answer_agreement']:.1%} of the questions.")
  lines += [
      "", "## Usage", "", "```python", "import transformers", "",
      "qa = transformers.pipeline(",
      "    \"question-answering\", model=\"pretrained\", "
      "tokenizer=\"pretrained\",",
      "    framework=\"tf\", dtype=None)  # dtype=None: no PyTorch needed",
      "qa(question=\"...\", context=\"...\")", "```", "",
      f"The TF Serving version of this model is "
      f"`saved_model/{model_name}/{version}` next to this directory "
      f"(signature `serving_default`: strings `question`, `context` -> "
      f"`answer`, `score`, `start_char`, `end_char`).", ""]
  return "\n".join(lines)


def _eval_results(model_dir):
  path = os.path.join(model_dir, rundir.EVAL_SUBDIR,
                      evaluation.RESULTS_FILE)
  if not os.path.isfile(path):
    return None
  return io_utils.read_json(path, what="the evaluation results")


def _format_value(value):
  return f"{value:.4g}" if isinstance(value, float) else str(value)
