"""Keras callbacks of the fit loop: per-step checkpoints and evaluations, the step log."""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tf_keras

from tfqa import io_utils
from tfqa import optimization
from tfqa import rundir
from tfqa import signals
from tfqa.layout import fs


class Saver:
  """Saves a checkpoint at the current step unless one exists for it."""

  def __init__(self, write_checkpoint, state, per_epoch, *, before_save,
               hooks):
    self._write = write_checkpoint
    self._state, self._per_epoch = state, per_epoch
    self._before_save = before_save
    self._hooks = hooks
    self._last_saved = int(state.step.numpy())

  @property
  def step(self) -> int:
    return int(self._state.step.numpy())

  def save_if_new(self):
    step = self.step
    if step == self._last_saved:
      return
    # Log lines up to this step must be on disk before the checkpoint that
    # a resumed run truncates the log to.
    self._before_save()
    self._state.epoch.assign(step // self._per_epoch)
    self._hooks.call("before_save", step)
    self._write()
    self._hooks.call("after_save", step)
    self._last_saved = step


class StepEnd(tf_keras.callbacks.Callback):
  """After each step: its evaluation and checkpoint when due, then the hook.

  An evaluation step is also a checkpoint step, evaluated first: the
  checkpoint then proves the evaluation complete, and a run killed during
  it resumes from an earlier checkpoint and evaluates that step again. A
  run stopped by a signal inside it saves the step without its evaluation
  (see preemption): the resumed run evaluates that step first. The last
  step is evaluated after training (see training._Evaluator).
  """

  def __init__(self, saver, *, save_every, evaluate, eval_every, last_step,
               hooks):
    super().__init__()
    self._saver, self._save_every = saver, save_every
    self._evaluate, self._eval_every = evaluate, eval_every
    self._last_step, self._hooks = last_step, hooks

  def on_train_begin(self, logs=None):
    step = self._saver.step
    self._hooks.call("fit_begin", step)
    if self._can_evaluate(step) and not self._evaluate.done(step):
      with signals.deferred():  # Its outputs are written whole.
        self._evaluate.evaluate(step, final=False)

  def _eval_due(self, step):
    return bool(self._eval_every and step % self._eval_every == 0 and
                0 < step < self._last_step)

  def _can_evaluate(self, step):
    return (self._eval_due(step) and self._evaluate is not None and
            self._evaluate.has_data)

  def on_train_batch_end(self, batch, logs=None):
    step = self._saver.step
    eval_due = self._eval_due(step)
    if self._can_evaluate(step):
      self._evaluate.evaluate(step, final=False)
    if eval_due or step % self._save_every == 0:
      self._saver.save_if_new()
    self._hooks.call("after_step", step)


class StepLogger(tf_keras.callbacks.Callback):
  """Per-step loss, LR and gradient norm to train_log.jsonl and TensorBoard.

  Keras reports the mean loss since the start of the fit call, which would
  differ between a resumed and an uninterrupted run; resetting the metric
  before each batch makes the logged loss that step's own. On start, log
  lines after the restored step are dropped: those steps run again. A
  disabled logger (non-chief worker) writes nothing.
  """

  def __init__(self, model_dir, state, *, enabled=True, replicas=1):
    super().__init__()
    self._state, self._enabled, self._replicas = state, enabled, replicas
    if not enabled:
      return
    truncate_train_log(model_dir, int(state.step.numpy()))
    self._file = fs.open_file(os.path.join(model_dir, rundir.TRAIN_LOG_FILE),
                              "a")
    self._writer = tf.summary.create_file_writer(
        os.path.join(model_dir, rundir.LOGS_SUBDIR, "train"))

  def on_train_batch_begin(self, batch, logs=None):
    self.model.reset_metrics()

  def on_train_batch_end(self, batch, logs=None):
    if not self._enabled:
      return
    step = int(self._state.step.numpy())
    lr = optimization.current_learning_rate(self._state.optimizer)
    loss = float(logs["loss"]) / self._replicas
    norm = optimization.last_gradient_norm(self._state.optimizer)
    self._file.write(json.dumps({"step": step, "loss": loss,
                                 "learning_rate": lr,
                                 "gradient_norm": norm}) + "\n")
    with self._writer.as_default(step=step):
      tf.summary.scalar("loss", loss)
      tf.summary.scalar("learning_rate", lr)
      tf.summary.scalar("gradient_norm", norm)

  def flush(self):
    if not self._enabled:
      return
    fs.flush_to_disk(self._file)
    self._writer.flush()

  def close(self):
    if not self._enabled:
      return
    self.flush()
    self._file.close()
    self._writer.close()


def read_train_log(model_dir: str) -> list[dict]:
  """The per-step log; a line cut by a kill is ignored."""
  path = os.path.join(model_dir, rundir.TRAIN_LOG_FILE)
  if not fs.exists(path):
    return []
  entries = []
  with fs.open_file(path) as f:
    for line in f:
      try:
        entries.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return entries


def truncate_train_log(model_dir, step):
  """Drops entries after the restored step: those steps will run again."""
  entries = [e for e in read_train_log(model_dir) if e["step"] <= step]
  io_utils.atomic_write_text(
      os.path.join(model_dir, rundir.TRAIN_LOG_FILE),
      "".join(json.dumps(e) + "\n" for e in entries))
