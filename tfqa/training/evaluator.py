"""Evaluation during and at the end of training: outputs, TensorBoard scalars, the best checkpoint."""

from __future__ import annotations

import os

from absl import logging
import tensorflow as tf

from tfqa import config as config_lib
from tfqa import signals
from tfqa.data import squad as squad_lib
from tfqa.evaluation import metrics as metrics_lib
from tfqa.inference import run_evaluation
from tfqa.layout import best_checkpoint
from tfqa.layout import fs
from tfqa.layout import rundir


def load_eval_data(data_config: config_lib.DataConfig
                   ) -> squad_lib.SquadData | None:
  """Eval examples: eval_file, else the TFDS validation split, else None."""
  if data_config.eval_file:
    return squad_lib.load_squad_json(data_config.eval_file)
  if data_config.tfds_dataset:
    return squad_lib.load_tfds_squad(data_config.tfds_dataset,
                                    split="validation",
                                    data_dir=data_config.tfds_data_dir)
  return None



class TrainingEvaluator:
  """Evaluations of the chief: outputs, TensorBoard scalars, best checkpoint.

  During training (final=False) the outputs go to eval/step-N/; at the end
  to eval/. Every evaluation writes its metrics to TensorBoard
  (logs/eval/), logs one line, and with --keep_best offers the step to
  best_checkpoint. Evaluating reads the weights only (no dropout, no
  random draws), so it leaves the training state as it was.
  """

  def __init__(self, state, tokenizer, run_config, model_dir, *, hooks,
               data: squad_lib.SquadData | None = None):
    self._state, self._tokenizer = state, tokenizer
    self._run_config, self._model_dir, self._hooks = (run_config, model_dir,
                                                      hooks)
    # Loaded when first needed (the chief's alone), unless given.
    self._data = data
    self._writer = None

  @property
  def has_data(self) -> bool:
    data = self._run_config.data
    return bool(data.eval_file or data.tfds_dataset)

  def done(self, step: int) -> bool:
    """Whether the evaluation during training at `step` wrote its outputs."""
    return fs.exists(os.path.join(
        self._model_dir, rundir.EVAL_SUBDIR,
        rundir.EVAL_STEP_SUBDIR.format(step=step), run_evaluation.RESULTS_FILE))

  def evaluate(self, step: int, *, final: bool,
               checkpoint: str | None = None) -> dict:
    """Evaluates the model at `step`; returns the metrics."""
    self._hooks.call("before_eval", step)
    run_config = self._run_config
    if self._data is None:
      self._data = load_eval_data(run_config.data)
    with signals.interruptible():  # Redone on resume (see StepEnd).
      result = run_evaluation.evaluate(self._state.model, self._data.examples,
                                   self._tokenizer, run_config=run_config)
    out_dir = os.path.join(self._model_dir, rundir.EVAL_SUBDIR)
    extra = {"global_step": step}
    if final:
      extra["checkpoint"] = checkpoint
    else:
      out_dir = os.path.join(out_dir, rundir.EVAL_STEP_SUBDIR.format(
          step=step))
    run_evaluation.write_outputs(
        out_dir, result,
        version_2_with_negative=run_config.decode.version_2_with_negative,
        extra_results=extra)
    self._summarize(step, result.metrics)
    logging.info("Eval at step %d: %s (%s)", step,
                 metrics_lib.headline(result.metrics), out_dir)
    if run_config.train.keep_best != "none":
      best_checkpoint.update(
          self._model_dir, metric=run_config.train.keep_best, step=step,
          metrics=result.metrics, write_checkpoint=self._write_weights)
    self._hooks.call("after_eval", step)
    return result.metrics

  def _summarize(self, step, metrics):
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(
          os.path.join(self._model_dir, rundir.LOGS_SUBDIR, "eval"))
    with self._writer.as_default(step=step):
      for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
          tf.summary.scalar(name, value)
    self._writer.flush()

  def _write_weights(self, prefix):
    # The weights and the signature restore_model checks; no optimizer.
    checkpoint = tf.train.Checkpoint(
        model=self._state.model, model_signature=self._state.model_signature)
    # What a restore expects of every checkpoint (write() omits it).
    _ = checkpoint.save_counter
    checkpoint.write(prefix)

  def close(self):
    if self._writer is not None:
      self._writer.close()
