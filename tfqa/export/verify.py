"""Checks an export against the checkpoint it was made from: logits of every copy (incl. PyTorch's reload) and serving_default's answers."""

from __future__ import annotations

import itertools
import os
from typing import Callable, Sequence

import numpy as np
import safetensors
from safetensors import numpy as safetensors_numpy
import tensorflow as tf
import transformers

from tfqa import config as config_lib
from tfqa import errors
from tfqa.data import sample
from tfqa.data import squad as squad_lib
from tfqa.inference import answering
from tfqa.inference import logits as logits_lib
from tfqa.inference import trained_model
from tfqa.layout import exportdir
from tfqa.layout import fs
from tfqa.model import modeling

# Disagreements quoted in an ExportVerificationError message (all of them
# are in its `verification` attribute).
_MAX_QUOTED_DISAGREEMENTS = 20

# (serving_default signature, examples) -> answer texts, in example order.
GraphAnswersFn = Callable[[Callable, Sequence[squad_lib.SquadExample]],
                          list[str]]


class ExportVerificationError(ValueError):
  """The exported model does not reproduce the trained one; nothing published.

  Attributes:
    verification: the verification results (max diffs, agreement, every
      disagreement), as they would have gone into the manifest.
  """

  def __init__(self, message: str, verification: dict):
    super().__init__(message)
    self.verification = verification


def probe_examples(probe_file: str | None, run_config: config_lib.RunConfig,
                   *, max_questions: int = (
                       config_lib.ExportConfig.max_probe_questions)
                   ) -> tuple[str, tuple[squad_lib.SquadExample, ...]]:
  """(source, at most `max_questions` examples) to check an export with.

  The source is `probe_file`, else the run's eval_file, else the bundled
  sample (offline, so runs trained from TFDS can be checked too).

  Raises:
    ValueError: the source holds no examples.
    FileNotFoundError: the file does not exist.
  """
  source = probe_file or run_config.data.eval_file or sample.sample_path()
  examples = squad_lib.load_squad_json(source).examples[:max_questions]
  if not examples:
    raise errors.ArgumentNamingError(
        errors.literal(f"Probe file {source} holds no usable questions. ") +
        "Pass {probe_file} with a SQuAD JSON file that has some.",
        ["probe_file"])
  return source, examples


def check_parity(trained: trained_model.TrainedModel, *,
                 saved_model_dir: str, pretrained_dir: str,
                 examples: Sequence[squad_lib.SquadExample],
                 probe_source: str,
                 logits_tolerance: float = (
                     config_lib.ExportConfig.logits_tolerance),
                 min_answer_agreement: float = (
                     config_lib.ExportConfig.min_answer_agreement),
                 graph_answers_fn: GraphAnswersFn | None = None) -> dict:
  """Checks an export against the checkpoint it was made from.

  (a) The start/end logits of every probe window from the checkpoint model,
  the SavedModel's predict_logits signature, the reloaded pretrained
  directory (and PyTorch's reload of its model.safetensors, when torch is
  installed) agree within `logits_tolerance`; every tensor of
  model.safetensors equals the TF variable it was written from (no torch
  needed). (b) serving_default's answers equal the Python
  path's (HF tokenizer windows + answers.decode_predictions over the
  checkpoint's logits) on at least `min_answer_agreement` of the questions.

  Args:
    trained: the loaded run (with the threshold to export).
    saved_model_dir: the (staged) SavedModel version.
    pretrained_dir: the (staged) save_pretrained directory.
    examples: the probe questions.
    probe_source: where they came from (recorded).
    logits_tolerance: see ExportConfig.
    min_answer_agreement: see ExportConfig.
    graph_answers_fn: how serving_default's answers are read (default:
      graph_answers); tests pass a fake to see a failed check.

  Returns:
    The results: probe size, max |diff| per pair of models, agreement rate
    and every disagreement (id, graph answer, python answer).

  Raises:
    ExportVerificationError: a check failed; the message has the numbers.
  """
  graph_answers_fn = graph_answers_fn or graph_answers
  checkpoint = answering.answer_examples(
      examples, logits_lib.model_logits_fn(trained.model),
      trained.run_config, tokenizer=trained.tokenizer)
  loaded = tf.saved_model.load(saved_model_dir)
  logits, safetensors = _logits_of_copies(trained, checkpoint, loaded,
                                          pretrained_dir)
  diffs = {f"{a}_vs_{b}": logits_lib.max_abs_diff(logits[a], logits[b])
           for a, b in itertools.combinations(logits, 2)}
  python_answers = checkpoint.predictions.texts()
  graph_texts = graph_answers_fn(
      loaded.signatures[exportdir.SERVING_SIGNATURE], examples)
  disagreements = [
      {"id": e.id, "graph": graph_texts[i], "python": python_answers[e.id]}
      for i, e in enumerate(examples)
      if graph_texts[i] != python_answers[e.id]]
  agreement = 1.0 - len(disagreements) / len(examples)
  verification = {
      "probe_source": probe_source,
      "probe_questions": len(examples),
      "probe_windows": len(checkpoint.windows),
      "logits_max_abs_diff": diffs,
      "logits_tolerance": logits_tolerance,
      "safetensors": safetensors,
      "torch": ("not installed" if "pytorch" not in logits else
                "checked: BertForQuestionAnswering.from_pretrained "
                "(model.safetensors)"),
      "answer_agreement": agreement,
      "min_answer_agreement": min_answer_agreement,
      "disagreements": disagreements,
  }
  failures = _failures(verification, diffs)
  verification["passed"] = not failures
  if failures:
    raise ExportVerificationError(
        f"Export verification failed on {len(examples)} probe questions "
        f"from {probe_source}: " + " | ".join(failures) + ". Nothing was "
        "published. The exported model would answer differently from the "
        "checkpoint; rerun with --noverify only to inspect such an export.",
        verification)
  return verification


def _logits_of_copies(trained, checkpoint, loaded, pretrained_dir):
  """({copy: its logits of the checkpoint's windows}, compare_safetensors).

  Copies: the checkpoint (`checkpoint`, answering.Answered), the SavedModel's
  predict_logits (`loaded`), the TF reload of the pretrained directory and,
  with torch installed, PyTorch's reload of its model.safetensors.
  """
  windows, run_config = checkpoint.windows, trained.run_config
  logits = {"checkpoint": checkpoint.logits,
            "saved_model": answering.logits_of(
                logits_lib.signature_logits_fn(loaded), windows, run_config)}
  # transformers reads local files only: a copy of a URL's.
  with fs.local_copy(pretrained_dir) as local_pretrained:
    reloaded = _reload_pretrained(local_pretrained)
    logits["pretrained"] = answering.logits_of(
        logits_lib.model_logits_fn(reloaded), windows, run_config)
    safetensors = compare_safetensors(
        trained.model, os.path.join(local_pretrained,
                                    exportdir.SAFETENSORS_FILE))
    torch_fn = logits_lib.pytorch_logits_fn(local_pretrained)
    if torch_fn is not None:
      logits["pytorch"] = answering.logits_of(torch_fn, windows, run_config)
  return logits, safetensors


def _failures(verification, diffs):
  """One line per failed check of `verification` ([] when all passed)."""
  logits_tolerance = verification["logits_tolerance"]
  min_answer_agreement = verification["min_answer_agreement"]
  agreement = verification["answer_agreement"]
  disagreements = verification["disagreements"]
  safetensors = verification["safetensors"]
  questions = verification["probe_questions"]
  failures = [f"logits {pair}: max |diff| {diff:.3g} > {logits_tolerance:g}"
              for pair, diff in diffs.items() if not diff <= logits_tolerance]
  if safetensors["problems"]:
    failures.append(f"{exportdir.SAFETENSORS_FILE}: "
                    + "; ".join(safetensors["problems"]))
  if agreement < min_answer_agreement:
    quoted = "; ".join(f"{d['id']}: graph {d['graph']!r} vs python "
                       f"{d['python']!r}"
                       for d in disagreements[:_MAX_QUOTED_DISAGREEMENTS])
    more = len(disagreements) - _MAX_QUOTED_DISAGREEMENTS
    failures.append(
        f"serving_default agrees with the Python answers on "
        f"{agreement:.1%} of {questions} questions (expected >= "
        f"{min_answer_agreement:.0%}); disagreements: {quoted}"
        + (f" and {more} more" if more > 0 else ""))
  return failures


def compare_safetensors(model, path: str) -> dict:
  """Compares a PyTorch model.safetensors with the model's TF variables.

  Needs no torch: every tensor of the file is compared, by the name mapping
  of modeling.pytorch_weights, with the variable it was written from.

  Returns:
    {"tensors": how many the file holds, "max_abs_diff": over all of them,
    "problems": one line per missing, unexpected, reshaped or changed
    tensor (empty when the file is the model)}.
  """
  expected = modeling.pytorch_weights(model)
  try:
    found = safetensors_numpy.load_file(path)
  except (safetensors.SafetensorError, OSError) as e:
    return {"tensors": 0, "max_abs_diff": None,
            "problems": [f"cannot be read: {type(e).__name__}: {e}"]}
  problems = [f"{name} is missing" for name in sorted(set(expected) -
                                                        set(found))]
  problems += [f"{name} is not a weight of the model"
               for name in sorted(set(found) - set(expected))]
  worst = 0.0
  for name in sorted(set(expected) & set(found)):
    want, got = expected[name], found[name]
    if want.shape != got.shape or want.dtype != got.dtype:
      problems.append(f"{name} is {got.dtype}{list(got.shape)}, expected "
                      f"{want.dtype}{list(want.shape)}")
      continue
    diff = float(np.max(np.abs(want - got), initial=0.0))
    worst = max(worst, diff)
    if diff != 0.0:
      problems.append(f"{name} differs from the TF variable by up to "
                      f"{diff:.3g}")
  return {"tensors": len(found), "max_abs_diff": worst,
          "problems": problems}


def _reload_pretrained(local_pretrained):
  """transformers' TF reload of a local save_pretrained directory, no dropout."""
  return transformers.TFBertForQuestionAnswering.from_pretrained(
      local_pretrained, local_files_only=True, hidden_dropout_prob=0.0,
      attention_probs_dropout_prob=0.0, **modeling.TF_WEIGHTS_ONLY)

def graph_answers(signature: Callable,
                  examples: Sequence[squad_lib.SquadExample]) -> list[str]:
  """serving_default's answer texts for `examples`, in their order."""
  texts = []
  for lo in range(0, len(examples), config_lib.VERIFY_BATCH_SIZE):
    chunk = examples[lo:lo + config_lib.VERIFY_BATCH_SIZE]
    out = signature(question=tf.constant([e.question for e in chunk]),
                    context=tf.constant([e.context for e in chunk]))
    texts.extend(a.decode("utf-8") for a in out["answer"].numpy())
  return texts
