"""Answers questions with what training and export wrote: a SavedModel (no transformers), a run's checkpoint, or an ONNX export (float or int8).

One loader, `load_predictor`, for every kind. An ONNX export needs the
`onnx` extra (onnxruntime); its export directory supplies the rest:

  export_dir/
    onnx/model.onnx, onnx/model.int8.onnx   what `OnnxPredictor` runs
    pretrained/                             the tokenizer (vocab, casing)
    manifest.json                           the run config (windows, decoding)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Protocol, Sequence

import tensorflow as tf

from tfqa import config as config_lib
from tfqa import errors
from tfqa import preflight
from tfqa.data import squad as squad_lib
from tfqa.data import windows as windows_lib
from tfqa.inference import answering
from tfqa.inference import logits as logits_lib
from tfqa.layout import exportdir
from tfqa.layout import fs
from tfqa.layout import integrity
from tfqa.layout import json_files
from tfqa.layout import paths

# Characters of context `mark_answer` shows around the answer.
CONTEXT_WIDTH = 200
_ELLIPSIS = "…"


@dataclasses.dataclass(frozen=True)
class Answer:
  """The answer to one question."""

  text: str  # "" for no answer
  score: float  # start + end logit (the null score for a v2.0 no-answer)
  start_char: int  # code point offset into the context; -1 for no answer
  end_char: int  # exclusive; -1 for no answer


class Predictor(Protocol):
  """Anything that answers questions from contexts."""

  def answer(self, questions: Sequence[str],
             contexts: Sequence[str]) -> list[Answer]:
    ...


class SavedModelPredictor:
  """Answers with a SavedModel's serving_default signature.

  Needs only TensorFlow and tensorflow_text (for the tokenizer ops), not
  transformers.
  """

  def __init__(self, saved_model_dir: str):
    """Loads the SavedModel (a version directory)."""
    # Registers the tokenizer ops the SavedModel's graph uses: only this
    # predictor needs them (the ONNX and checkpoint predictors tokenize in
    # Python and load without tensorflow_text).
    import tensorflow_text  # pylint: disable=import-outside-toplevel,unused-import

    self.saved_model_dir = saved_model_dir
    self._loaded = tf.saved_model.load(saved_model_dir)
    self._answer = self._loaded.signatures[exportdir.SERVING_SIGNATURE]

  def answer(self, questions: Sequence[str],
             contexts: Sequence[str]) -> list[Answer]:
    check_same_length(questions, contexts)
    results = []
    for lo in range(0, len(questions), config_lib.PREDICT_BATCH_SIZE):
      out = self._answer(
          question=tf.constant(list(questions[lo:lo + config_lib.PREDICT_BATCH_SIZE]),
                               tf.string),
          context=tf.constant(list(contexts[lo:lo + config_lib.PREDICT_BATCH_SIZE]), tf.string))
      results.extend(
          Answer(text.decode("utf-8"), float(score), int(start), int(end))
          for text, score, start, end in zip(
              out["answer"].numpy(), out["score"].numpy(),
              out["start_char"].numpy(), out["end_char"].numpy()))
    return results


class CheckpointPredictor:
  """Answers with a training run's checkpoint, in Python (HF tokenizer)."""

  def __init__(self, model_dir: str, *, checkpoint: str | None = None,
               checked: preflight.Checked | None = None):
    """Loads the run's model and checkpoint (see `trained_model.load`)."""
    # Only a run's checkpoint needs trained_model, which imports
    # transformers (the model class) and tf_keras: the SavedModel predictor
    # never loads transformers (tests/test_inference_predictor.py).
    from tfqa.inference import trained_model  # pylint: disable=import-outside-toplevel

    self.trained = trained_model.load(model_dir, checkpoint=checkpoint,
                                      checked=checked)

  def answer(self, questions: Sequence[str],
             contexts: Sequence[str]) -> list[Answer]:
    # The model's logits function is traced once, at the first question.
    _, predictions = _python_path(
        questions, contexts, logits_lib.model_logits_fn(self.trained.model),
        self.trained.run_config, tokenizer=self.trained.tokenizer)
    return [Answer(p.text, float(p.score), p.start_char, p.end_char)
            for p in predictions]


class OnnxPredictor:
  """Answers raw questions with an exported ONNX model (float or int8).

  Tokenization and windows come from tfqa.data.windows with the export's
  tokenizer (pretrained/) and run config (manifest.json); the logits from
  ONNX Runtime; the answers from inference.answering, so answers match the
  SavedModel's up to the model's logits.
  """

  def __init__(self, path: str, *, verify: bool = False,
               threads: int | None = None):
    """Loads the model, its export's tokenizer and run config.

    Args:
      path: an .onnx file under EXPORT_DIR/onnx/, or EXPORT_DIR.
      verify: check the file's SHA-256 against manifest.json first.
      threads: ONNX Runtime intra-op threads (default: ONNX Runtime's).

    Raises:
      ValueError: not an ONNX export, or a failed `verify`.
      ImportError: onnxruntime is not installed.
    """
    self.model_path, self.export_dir = resolve_onnx_model(path)
    manifest_path = os.path.join(self.export_dir, exportdir.MANIFEST_FILE)
    pretrained = os.path.join(self.export_dir, exportdir.PRETRAINED_SUBDIR)
    if not fs.isfile(manifest_path) or not fs.isdir(pretrained):
      raise ValueError(
          f"{self.model_path} needs its export directory {self.export_dir} "
          f"with manifest.json (run config) and pretrained/ (tokenizer); "
          f"keep onnx/ inside the directory tfqa_export wrote.")
    if verify:
      integrity.verify_digests(
          self.export_dir,
          parts=(f"{exportdir.ONNX_SUBDIR}/"
                 f"{os.path.basename(self.model_path)}",),
          subject=self.model_path)
    manifest = exportdir.read_manifest(self.export_dir)
    self.run_config = config_lib.RunConfig.from_dict(
        manifest["run_config"], source=f"{manifest_path}: run_config")
    self.tokenizer = windows_lib.load_tokenizer(pretrained)
    self._logits_fn = logits_lib.onnx_logits_fn(
        logits_lib.onnx_session(self.model_path, threads=threads))

  def answer(self, questions: Sequence[str],
             contexts: Sequence[str]) -> list[Answer]:
    """One Answer per question."""
    examples, predictions = _python_path(
        questions, contexts, self._logits_fn, self.run_config,
        tokenizer=self.tokenizer, batch_size=config_lib.ONNX_BATCH_SIZE)
    results = []
    for e, p in zip(examples, predictions):
      if self._is_empty(e.question) or self._is_empty(e.context):
        # As serving_default: no question or no context, no answer; its
        # score is the null score (v2.0) or 0.
        null_score = p.score + p.null_odds if p.text else p.score
        results.append(Answer(
            "", float(null_score) if self.run_config.decode
            .version_2_with_negative else 0.0, -1, -1))
      else:
        results.append(Answer(p.text, float(p.score), p.start_char,
                              p.end_char))
    return results

  def _is_empty(self, text: str) -> bool:
    """Whether `text` has no word piece (the graph's empty row)."""
    return not self.tokenizer.tokenize(text)


def _python_path(questions, contexts, logits_fn, run_config, *, tokenizer,
                 batch_size=None):
  """(examples, their ExamplePredictions in order): tfqa's Python windows,
  `logits_fn`'s logits and decoding, with the run's settings."""
  check_same_length(questions, contexts)
  examples = squad_lib.examples_from_text(questions, contexts)
  if not examples:
    return [], []
  predictions = answering.answer_examples(
      examples, logits_fn, run_config, tokenizer=tokenizer,
      batch_size=batch_size).predictions
  return examples, [predictions.by_id[e.id] for e in examples]


def check_same_length(questions: Sequence[str],
                      contexts: Sequence[str]) -> None:
  """Raises a ValueError unless there is one context per question."""
  if len(questions) != len(contexts):
    raise ValueError(
        f"Got {len(questions)} questions and {len(contexts)} contexts. "
        f"Expected one context per question.")


def resolve_saved_model(path: str) -> str | None:
  """The SavedModel version directory `path` points at, or None.

  Args:
    path: a version directory (holds saved_model.pb), a model directory
      (numbered version subdirectories) or an export directory (holds
      saved_model/<model_name>/...; the manifest's model, else the only one).
      The latter two resolve to their largest version.

  Returns:
    The version directory; None when `path` is none of these.

  Raises:
    ValueError: an export or model directory with no version, or several
      models and no manifest to choose one.
  """
  if fs.isfile(os.path.join(path, "saved_model.pb")):
    return path
  models_root = os.path.join(path, exportdir.SAVED_MODEL_SUBDIR)
  if fs.isdir(models_root):
    manifest_path = os.path.join(path, exportdir.MANIFEST_FILE)
    if fs.isfile(manifest_path):
      name = exportdir.read_manifest(path)["model_name"]
      if (not isinstance(name, str) or name in ("", ".", "..") or
          os.path.basename(name) != name or "\\" in name):
        # A directory name, never a path: the manifest must not steer the
        # load outside saved_model/.
        raise ValueError(
            f"{manifest_path}: model_name {name!r} is not a directory name "
            f"inside {models_root}; refused (a damaged or planted "
            f"manifest). Pass the version directory instead.")
    else:
      names = fs.listdir(models_root)
      if len(names) != 1:
        raise ValueError(
            f"{models_root} holds the models {names} and {path} has no "
            f"{exportdir.MANIFEST_FILE} to choose one. Pass one model's "
            f"directory instead: {os.path.join(models_root, 'NAME')}.")
      name = names[0]
    return _latest_version(os.path.join(models_root, name))
  if exportdir.existing_versions(path):
    return _latest_version(path)
  return None


def _latest_version(models_dir):
  versions = [v for v in exportdir.existing_versions(models_dir)
              if fs.isfile(os.path.join(models_dir, str(v),
                                             "saved_model.pb"))]
  if not versions:
    raise ValueError(f"{models_dir} holds no SavedModel version directory "
                     f"(<number>/saved_model.pb). Run tfqa_export first.")
  return os.path.join(models_dir, str(versions[-1]))


def check_manifest(saved_model_dir: str) -> dict:
  """Checks a version directory's files against its export's manifest.json.

  The manifest is looked for in the export directory three levels up
  (export_dir/saved_model/<name>/<version>); it must describe this version.

  Returns:
    The manifest.

  Raises:
    integrity.ManifestMismatchError: no manifest, a manifest of another
      version, or a file that is missing, changed (SHA-256) or not in the
      manifest; the message names every such file.
  """
  version_dir = fs.abspath(saved_model_dir)
  export_dir = os.path.dirname(os.path.dirname(os.path.dirname(version_dir)))
  manifest_path = os.path.join(export_dir, exportdir.MANIFEST_FILE)
  if not fs.isfile(manifest_path):
    raise integrity.ManifestMismatchError(
        f"Cannot verify {saved_model_dir}: no {manifest_path}. Expected the "
        f"SavedModel inside an export directory written by tfqa_export "
        f"(EXPORT_DIR/saved_model/NAME/VERSION), or load it without "
        f"verifying a manifest.")
  manifest = exportdir.read_manifest(export_dir)
  described = os.path.join(export_dir, *manifest["paths"]["saved_model"]
                           .split("/"))
  if fs.realpath(described) != fs.realpath(version_dir):
    raise integrity.ManifestMismatchError(
        f"{manifest_path} describes {manifest['paths']['saved_model']}, not "
        f"{saved_model_dir}; only the latest export has a manifest. Verify "
        f"{described} instead, or re-export this version.")
  return integrity.verify_digests(export_dir, parts=("saved_model",),
                                  subject=saved_model_dir)


def resolve_onnx_model(path: str) -> tuple[str, str]:
  """(model file, export directory) for an .onnx file or an export directory.

  Args:
    path: EXPORT_DIR/onnx/<name>.onnx, or EXPORT_DIR (its float model).

  Raises:
    ValueError: neither, naming what was looked for.
  """
  if fs.isdir(path):
    model = os.path.join(path, exportdir.ONNX_SUBDIR, exportdir.ONNX_FILE)
    if not fs.isfile(model):
      raise ValueError(f"{path} has no {exportdir.ONNX_SUBDIR}/"
                       f"{exportdir.ONNX_FILE}. Export "
                       f"with tfqa_export --onnx, or pass the .onnx file.")
    return model, path
  if not fs.isfile(path) or not path.endswith(".onnx"):
    raise paths.path_error("onnx_model", path, errors.literal(
        f"is not an .onnx file or an export directory. Expected EXPORT_DIR/"
        f"{exportdir.ONNX_SUBDIR}/{exportdir.ONNX_FILE} (or "
        f"{exportdir.ONNX_INT8_FILE}) written by tfqa_export --onnx."))
  return path, os.path.dirname(os.path.dirname(fs.abspath(path)))


def load_predictor(path: str, *, onnx: bool | None = None,
                   verify_manifest: bool = False,
                   checkpoint: str | None = None,
                   checked: preflight.Checked | None = None) -> Predictor:
  """A predictor for a SavedModel or ONNX export, or a training run.

  Args:
    path: a SavedModel version, model or export directory (see
      `resolve_saved_model`), an .onnx file or export directory with
      onnx/model.onnx (see `resolve_onnx_model`), or a tfqa_train
      --model_dir.
    onnx: True: answer with the ONNX model (ONNX Runtime, the `onnx`
      extra); default: when `path` ends with .onnx.
    verify_manifest: check the export's files against its manifest first
      (exports only).
    checkpoint: checkpoint prefix (training runs only; default newest).
    checked: what preflight.check_predict returned for these arguments (not
      checked again); None: checked here.

  Raises:
    ValueError: `path` is none of these, or an option does not apply to it.
    integrity.ManifestMismatchError: `verify_manifest` found a missing or changed
      file.
    ImportError: an ONNX model without onnxruntime.
  """
  if onnx or (onnx is None and str(path).endswith(".onnx")):
    if checkpoint is not None:
      raise errors.ArgumentNamingError(
          f"Invalid argument {{checkpoint:q}}={errors.literal(repr(checkpoint))}"
          f": it applies to training runs, not to the ONNX model "
          f"{errors.literal(str(path))}. Drop it.", ["checkpoint"])
    preflight.unless_checked(checked, preflight.check_predict,
                             onnx_model=path)
    return OnnxPredictor(path, verify=verify_manifest)
  checked = preflight.unless_checked(checked, preflight.check_predict,
                                     model=path, checkpoint=checkpoint)
  saved_model_dir = resolve_saved_model(path)
  if saved_model_dir is not None:
    if checkpoint is not None:
      raise errors.ArgumentNamingError(
          "{checkpoint:q} applies to training runs, but " +
          errors.literal(str(path)) + " is a SavedModel. Drop {checkpoint:q}.",
          ["checkpoint"])
    if verify_manifest:
      check_manifest(saved_model_dir)
    return SavedModelPredictor(saved_model_dir)
  if fs.isfile(os.path.join(path, "run_config.json")):
    if verify_manifest:
      raise errors.ArgumentNamingError(
          "{verify_manifest:q} checks exported SavedModels, but " +
          errors.literal(str(path)) + " is a training run. Drop "
          "{verify_manifest:q} or pass the export directory.",
          ["verify_manifest"])
    return CheckpointPredictor(path, checkpoint=checkpoint, checked=checked)
  raise ValueError(f"{path} holds neither a SavedModel (saved_model.pb, "
                   f"numbered versions or saved_model/) nor a training run "
                   f"(run_config.json).")


def predict_file(predictor: Predictor, input_file: str, *,
                 checked: preflight.Checked | None = None
                 ) -> dict[str, Answer]:
  """Answers every question of a SQuAD JSON file: id -> Answer.

  `checked`: what preflight.check_predict returned (`input_file` is not
  checked again when it covers it).

  Raises:
    paths.PathError: `input_file` is missing or not a JSON file.
    SquadFormatError: it is not SQuAD JSON.
  """
  preflight.unless_checked(checked, preflight.check_predict,
                           input_file=input_file)
  examples = squad_lib.load_squad_json(input_file).examples
  results = predictor.answer([e.question for e in examples],
                             [e.context for e in examples])
  return {e.id: answer for e, answer in zip(examples, results)}


def write_predictions(path: str, predictions: dict[str, Answer]) -> None:
  """Writes `predictions.json` (id -> answer text), atomically."""
  json_files.atomic_write_json(path, {qid: answer.text
                                    for qid, answer in predictions.items()})


def mark_answer(context: str, start_char: int, end_char: int, *,
                width: int = CONTEXT_WIDTH) -> str:
  """The context around the answer, with the answer in [[double brackets]].

  About `width` chars are shown (the answer always whole), "…" marking cuts;
  with no answer (start_char < 0), the context's start.
  """
  if start_char < 0:
    return context[:width] + (_ELLIPSIS if len(context) > width else "")
  room = max(0, width - (end_char - start_char))
  # Half the room on each side; what one side cannot use goes to the other.
  lo = max(0, start_char - room // 2)
  hi = min(len(context), end_char + room - (start_char - lo))
  lo = max(0, start_char - (room - (hi - end_char)))
  return "".join([
      _ELLIPSIS if lo > 0 else "", context[lo:start_char], "[[",
      context[start_char:end_char], "]]", context[end_char:hi],
      _ELLIPSIS if hi < len(context) else ""])
