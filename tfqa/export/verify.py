"""Checks an export against the checkpoint it was made from: logits of every copy (incl. PyTorch's reload) and serving_default's answers."""

from __future__ import annotations

import itertools
import os
from typing import Callable, Sequence

import tensorflow as tf

from tfqa import answers
from tfqa import config as config_lib
from tfqa import data as data_lib
from tfqa import evaluation
from tfqa import exportdir
from tfqa import features as features_lib
from tfqa import input_pipeline
from tfqa import modeling
from tfqa import sample
from tfqa import trained_model
from tfqa.export import saved_model as saved_model_lib
from tfqa.layout import fs

# Questions per serving_default call while verifying (bounds memory).
_PROBE_BATCH_SIZE = 16
# Disagreements quoted in an ExportVerificationError message (all of them
# are in its `verification` attribute).
_MAX_QUOTED_DISAGREEMENTS = 20

# (serving_default signature, examples) -> answer texts, in example order.
GraphAnswersFn = Callable[[Callable, Sequence[data_lib.SquadExample]],
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
                   ) -> tuple[str, tuple[data_lib.SquadExample, ...]]:
  """(source, at most `max_questions` examples) to check an export with.

  The source is `probe_file`, else the run's eval_file, else the bundled
  sample (offline, so runs trained from TFDS can be checked too).

  Raises:
    ValueError: the source holds no examples.
    FileNotFoundError: the file does not exist.
  """
  source = probe_file or run_config.data.eval_file or sample.sample_path()
  examples = data_lib.load_squad_json(source).examples[:max_questions]
  if not examples:
    raise ValueError(f"Probe file {source} holds no usable questions. Pass "
                     f"--probe_file with a SQuAD JSON file that has some.")
  return source, examples


def check_parity(trained: trained_model.TrainedModel, *,
                 saved_model_dir: str, pretrained_dir: str,
                 examples: Sequence[data_lib.SquadExample],
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
  import transformers  # pylint: disable=import-outside-toplevel

  graph_answers_fn = graph_answers_fn or graph_answers
  run_config = trained.run_config
  windows = features_lib.build_features(examples, trained.tokenizer,
                                        run_config.features)
  batching = dict(batch_size=run_config.train.eval_batch_size,
                  max_seq_length=run_config.features.max_seq_length,
                  pipeline_config=run_config.pipeline)
  logits = {"checkpoint": evaluation.model_logits(trained.model, windows,
                                                  **batching)}
  loaded = tf.saved_model.load(saved_model_dir)
  logits["saved_model"] = modeling.window_logits(
      saved_model_lib.predict_logits_fn(loaded), windows,
      input_pipeline.eval_dataset(windows, **batching))
  # transformers reads local files only: a copy of a URL's.
  with fs.local_copy(pretrained_dir) as local_pretrained:
    reloaded = transformers.TFBertForQuestionAnswering.from_pretrained(
        local_pretrained, local_files_only=True, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, **modeling.TF_WEIGHTS_ONLY)
    logits["pretrained"] = evaluation.model_logits(reloaded, windows,
                                                   **batching)
    safetensors = compare_safetensors(
        trained.model, os.path.join(local_pretrained,
                                    exportdir.SAFETENSORS_FILE))
    torch_logits = _torch_logits(local_pretrained, windows, batching)
  if torch_logits is not None:
    logits["pytorch"] = torch_logits
  diffs = {f"{a}_vs_{b}": modeling.max_abs_diff(logits[a], logits[b])
           for a, b in itertools.combinations(logits, 2)}

  python_answers = answers.decode_predictions(
      examples, windows, *logits["checkpoint"], run_config.decode).texts()
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
      "probe_windows": len(windows),
      "logits_max_abs_diff": diffs,
      "logits_tolerance": logits_tolerance,
      "safetensors": safetensors,
      "torch": ("not installed" if torch_logits is None else
                "checked: BertForQuestionAnswering.from_pretrained "
                "(model.safetensors)"),
      "answer_agreement": agreement,
      "min_answer_agreement": min_answer_agreement,
      "disagreements": disagreements,
  }
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
        f"{agreement:.1%} of {len(examples)} questions (expected >= "
        f"{min_answer_agreement:.0%}); disagreements: {quoted}"
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


def compare_safetensors(model, path: str) -> dict:
  """Compares a PyTorch model.safetensors with the model's TF variables.

  Needs no torch: every tensor of the file is compared, by the name mapping
  of modeling.pytorch_weights, with the variable it was written from.

  Returns:
    {"tensors": how many the file holds, "max_abs_diff": over all of them,
    "problems": one line per missing, unexpected, reshaped or changed
    tensor (empty when the file is the model)}.
  """
  import numpy as np  # pylint: disable=import-outside-toplevel
  import safetensors  # pylint: disable=import-outside-toplevel
  from safetensors import numpy as safetensors_numpy  # pylint: disable=import-outside-toplevel

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


def _torch_logits(pretrained_dir, windows, batching):
  """PyTorch's reload of the pretrained directory, or None without torch."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  import transformers  # pylint: disable=import-outside-toplevel

  # What a PyTorch user runs; it reads model.safetensors.
  model = transformers.BertForQuestionAnswering.from_pretrained(
      pretrained_dir, local_files_only=True)
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

  return modeling.window_logits(
      logits_fn, windows, input_pipeline.eval_dataset(windows, **batching))


def graph_answers(signature: Callable,
                  examples: Sequence[data_lib.SquadExample]) -> list[str]:
  """serving_default's answer texts for `examples`, in their order."""
  texts = []
  for lo in range(0, len(examples), _PROBE_BATCH_SIZE):
    chunk = examples[lo:lo + _PROBE_BATCH_SIZE]
    out = signature(question=tf.constant([e.question for e in chunk]),
                    context=tf.constant([e.context for e in chunk]))
    texts.extend(a.decode("utf-8") for a in out["answer"].numpy())
  return texts
