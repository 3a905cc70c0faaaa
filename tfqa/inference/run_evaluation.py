"""Evaluation of a Keras model: answers to eval questions (inference.answering), official metrics, output files."""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from tfqa import config as config_lib
from tfqa import errors
from tfqa import preflight
from tfqa.data import squad as squad_lib
from tfqa.data import windows as windows_lib
from tfqa.evaluation import decoding
from tfqa.evaluation import metrics as metrics_lib
from tfqa.inference import answering
from tfqa.inference import logits as logits_lib
from tfqa.inference import trained_model
from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.layout import rundir

PREDICTIONS_FILE = "predictions.json"
NBEST_FILE = "nbest_predictions.json"
NULL_ODDS_FILE = "null_odds.json"
RESULTS_FILE = "eval_results.json"


@dataclasses.dataclass(frozen=True)
class EvalResult:
  predictions: decoding.Predictions
  metrics: dict


def score(examples: Sequence[squad_lib.SquadExample],
          predictions: decoding.Predictions,
          decode_config: config_lib.DecodeConfig) -> dict:
  """Official SQuAD metrics of decoded predictions (v2.0 with null odds)."""
  version_2 = decode_config.version_2_with_negative
  return metrics_lib.squad_metrics(
      squad_lib.gold_answers(examples), predictions.texts(),
      version_2=version_2,
      na_probs=predictions.null_odds() if version_2 else None)


def predict_examples(model, examples: Sequence[squad_lib.SquadExample],
                     tokenizer, *, run_config: config_lib.RunConfig
                     ) -> decoding.Predictions:
  """Windows, model logits and decoded answers, with the run's settings.

  The model's logits function is traced once per model
  (logits.model_logits_fn).
  """
  return answering.answer_examples(
      examples, logits_lib.model_logits_fn(model), run_config,
      tokenizer=tokenizer).predictions


def computed_tokens(examples: Sequence[squad_lib.SquadExample], tokenizer, *,
                    run_config: config_lib.RunConfig) -> int:
  """Tokens, padding included, the model computes in `evaluate` of these
  examples: what an evaluation's time grows with."""
  return answering.padded_tokens(
      windows_lib.build_features(examples, tokenizer, run_config.features),
      run_config)


def evaluate(model, examples: Sequence[squad_lib.SquadExample], tokenizer, *,
             run_config: config_lib.RunConfig) -> EvalResult:
  """Predicts and scores `examples` with `model` using the run's settings."""
  predictions = predict_examples(model, examples, tokenizer,
                                 run_config=run_config)
  return EvalResult(predictions, score(examples, predictions,
                                       run_config.decode))


def write_outputs(out_dir: str, result: EvalResult, *,
                  version_2_with_negative: bool,
                  extra_results: dict | None = None) -> list[str]:
  """Writes the official output files; returns their paths.

  Files: predictions.json (id -> text), nbest_predictions.json,
  null_odds.json (v2.0 only) and eval_results.json (metrics + extras).
  """
  fs.makedirs(out_dir)
  files = {
      PREDICTIONS_FILE: result.predictions.texts(),
      NBEST_FILE: result.predictions.nbest(),
      RESULTS_FILE: {**result.metrics, **(extra_results or {})},
  }
  if version_2_with_negative:
    files[NULL_ODDS_FILE] = result.predictions.null_odds()
  paths = []
  for name, obj in files.items():
    path = os.path.join(out_dir, name)
    json_files.atomic_write_json(path, obj)
    paths.append(path)
  return paths


def evaluate_run(model_dir: str, *, eval_file: str | None = None,
                 checkpoint: str | None = None,
                 output_dir: str | None = None,
                 checked=None) -> tuple[dict, str]:
  """Evaluates a checkpoint of a training run and writes the output files.

  Args:
    model_dir: a tfqa_train --model_dir.
    eval_file: SQuAD JSON; defaults to the run's eval_file.
    checkpoint: checkpoint prefix; defaults to the newest readable one.
    output_dir: defaults to model_dir/eval/<checkpoint name>.
    checked: what preflight.check_eval returned for these arguments (not
      checked again); None: checked here.

  Returns:
    (metrics, output_dir).

  Raises:
    ValueError: no eval file, an input of the wrong kind, or the
      run/checkpoint cannot be used.
  """
  checked = preflight.unless_checked(
      checked, preflight.check_eval, model_dir=model_dir, eval_file=eval_file,
      checkpoint=checkpoint, output_dir=output_dir)
  trained = trained_model.load(model_dir, checkpoint=checkpoint,
                               checked=checked)
  eval_file = eval_file or trained.run_config.data.eval_file
  if not eval_file:
    raise errors.ArgumentNamingError(
        errors.literal(f"The run in {model_dir} has no eval_file; pass ") +
        "{eval_file}.", ["eval_file"])
  examples = squad_lib.load_squad_json(eval_file).examples
  result = evaluate(trained.model, examples, trained.tokenizer,
                    run_config=trained.run_config)
  output_dir = output_dir or os.path.join(
      model_dir, rundir.EVAL_SUBDIR, os.path.basename(trained.checkpoint))
  write_outputs(output_dir, result,
                version_2_with_negative=trained.run_config.decode
                .version_2_with_negative,
                extra_results={"checkpoint": trained.checkpoint,
                               "eval_file": eval_file})
  return result.metrics, output_dir
