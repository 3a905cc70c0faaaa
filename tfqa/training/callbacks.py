"""Keras callbacks of the fit loop: per-step checkpoints and evaluations, the step log, eval results in Keras logs."""

from __future__ import annotations

import json
import math
import os

from absl import logging
import tensorflow as tf
import tf_keras

from tfqa import signals
from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.layout import rundir
from tfqa.training import optimization


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


def check_callbacks(callbacks) -> list:
  """The user's callbacks as a list, each a tf_keras callback tfqa accepts.

  Raises:
    ValueError: a callback of another Keras (or not one), or one that
      contradicts tfqa's design (_REFUSED_CALLBACKS, EarlyStopping with
      restore_best_weights), naming it, the reason and what to do.
  """
  callbacks = list(callbacks)
  for i, callback in enumerate(callbacks):
    if not isinstance(callback, tf_keras.callbacks.Callback):
      raise ValueError(
          f"Invalid value for argument `callbacks`. Received: callbacks[{i}]="
          f"{callback!r} ({type(callback).__module__}."
          f"{type(callback).__qualname__}). Expected tf_keras.callbacks."
          f"Callback instances: tfqa trains with Keras 2 (tf_keras). Subclass "
          f"tf_keras.callbacks.Callback, or set TF_USE_LEGACY_KERAS=1 before "
          f"TensorFlow is first imported so that tf.keras is tf_keras.")
    for kind, reason in _REFUSED_CALLBACKS.items():
      if isinstance(callback, getattr(tf_keras.callbacks, kind)):
        raise ValueError(
            f"Invalid value for argument `callbacks`. Received: callbacks[{i}]"
            f"={type(callback).__name__}: {reason}")
    if (isinstance(callback, tf_keras.callbacks.EarlyStopping) and
        callback.restore_best_weights):
      raise ValueError(
          f"Invalid value for argument `callbacks`. Received: callbacks[{i}]"
          f"=EarlyStopping(restore_best_weights=True): it would replace the "
          f"weights after tfqa's final checkpoint and evaluation; use "
          f"--keep_best (keep_best= in TrainConfig) to keep the best "
          f"evaluated weights, and EarlyStopping without "
          f"restore_best_weights.")
  return callbacks


# Stock callbacks that contradict tfqa's design, with the reason and what to
# do instead.
_REFUSED_CALLBACKS = {
    "BackupAndRestore": (
        "tfqa checkpoints and resumes the run itself (model_dir/checkpoints, "
        "--save_every_steps); remove it and rerun the same command to "
        "resume."),
    "ModelCheckpoint": (
        "tfqa checkpoints the run itself (--save_every_steps, "
        "--keep_checkpoints); to keep the best evaluated weights use "
        "--keep_best (keep_best= in TrainConfig)."),
    "ReduceLROnPlateau": (
        "the learning-rate schedule is part of tfqa's exact resume (its "
        "value is a function of the step); set --learning_rate, "
        "--warmup_ratio and --num_train_epochs instead."),
    "LearningRateScheduler": (
        "the learning-rate schedule is part of tfqa's exact resume (its "
        "value is a function of the step); set --learning_rate, "
        "--warmup_ratio and --num_train_epochs instead."),
}


# Keras log names of an evaluation's metrics (squad_metrics' names on the
# right); stock callbacks monitor them (EarlyStopping(monitor="val_f1")).
_KERAS_METRIC_NAMES = {
    "val_exact_match": ("exact_match", "exact"),
    "val_f1": ("f1",),
    "val_best_f1": ("best_f1",),
    "val_has_ans_f1": ("HasAns_f1",),
    "val_no_ans_f1": ("NoAns_f1",),
}


def keras_logs(metrics) -> dict:
  """An evaluation's metrics under their Keras log names (val_f1, ...)."""
  logs = {}
  for log_name, names in _KERAS_METRIC_NAMES.items():
    for name in names:
      if name in metrics:
        logs[log_name] = float(metrics[name])
        break
  return logs


def start_keras_at_step(model, step, per_epoch):
  """Makes the next `model.fit` start at global step `step` of the run.

  Keras then begins inside epoch step // per_epoch at its batch
  step % per_epoch (the first epoch is shorter; its batch indices and every
  later epoch are those of an uninterrupted run), and counts its train steps,
  which TensorBoard writes batch summaries at, from `step`. tf_keras reads a
  mid-epoch start from `model._training_state`, the seam its own
  BackupAndRestore uses (tfqa refuses that callback, so nothing else sets
  it); `fit` zeroes `_train_counter` before `on_train_begin`, hence
  `StepEnd.on_train_begin` calls this.
  """
  model._training_state = _KerasStart(step, per_epoch)  # pylint: disable=protected-access
  model._train_counter.assign(step)  # pylint: disable=protected-access


class _KerasStart:
  """tf_keras' training-state protocol: where fit begins (epoch, batch)."""

  def __init__(self, step, per_epoch):
    self._step, self._per_epoch = step, per_epoch

  def maybe_load_initial_counters_from_ckpt(self, steps_per_epoch,
                                            initial_epoch, mode=None):
    del steps_per_epoch, initial_epoch, mode  # The run's own position.
    return self._step // self._per_epoch, self._step % self._per_epoch


class StepEnd(tf_keras.callbacks.Callback):
  """After each step: its evaluation and checkpoint when due, then the hook.

  An evaluation step is also a checkpoint step, evaluated first: the
  checkpoint then proves the evaluation complete, and a run killed during
  it resumes from an earlier checkpoint and evaluates that step again. A
  run stopped by a signal inside it saves the step without its evaluation
  (see preemption): the resumed run evaluates that step first.
  Every epoch ends with a checkpoint; the last one (or the one a callback
  stopped training in) also with `finish`: the run's final evaluation.
  An evaluation's results enter the logs of its step's batch end and of its
  epoch's end as val_exact_match, val_f1 (v2.0: val_best_f1,
  val_has_ans_f1, val_no_ans_f1), for the callbacks that follow this one.
  A step whose loss is not finite is never checkpointed nor evaluated: a
  run stopped there (TerminateOnNaN) keeps its last finite checkpoint.
  """

  def __init__(self, saver, *, save_every, evaluate, eval_every, last_step,
               hooks, finish, per_epoch):
    super().__init__()
    self._saver, self._save_every = saver, save_every
    self._evaluate, self._eval_every = evaluate, eval_every
    self._last_step, self._hooks = last_step, hooks
    self._finish, self._per_epoch = finish, per_epoch
    self._epoch_results = {}  # The latest evaluation's, this epoch.
    self._redone = {}  # An evaluation redone at fit begin (a resume).
    self._finite = True  # Whether the last step's loss was finite.
    self.finished = False  # Whether `finish` ran; it returned `metrics`.
    self.metrics = None

  def on_train_begin(self, logs=None):
    step = self._saver.step
    start_keras_at_step(self.model, step, self._per_epoch)
    self._hooks.call("fit_begin", step)
    self._redone = {}
    if self._can_evaluate(step) and not self._evaluate.done(step):
      with signals.deferred():  # Its outputs are written whole.
        self._redone = keras_logs(self._evaluate.evaluate(step, final=False))

  def _eval_due(self, step):
    return bool(self._eval_every and step % self._eval_every == 0 and
                0 < step < self._last_step)

  def _can_evaluate(self, step):
    return (self._eval_due(step) and self._evaluate is not None and
            self._evaluate.has_data)

  def on_epoch_begin(self, epoch, logs=None):
    # An evaluation redone at the start belongs to this (the first) epoch.
    self._epoch_results, self._redone = self._redone, {}

  def on_train_batch_end(self, batch, logs=None):
    step = self._saver.step
    self._finite = math.isfinite(float((logs or {}).get("loss", 0.0)))
    eval_due = self._finite and self._eval_due(step)
    if eval_due and self._can_evaluate(step):
      self._epoch_results = keras_logs(self._evaluate.evaluate(step,
                                                               final=False))
      if logs is not None:
        logs.update(self._epoch_results)
    if self._finite and (eval_due or step % self._save_every == 0):
      self._saver.save_if_new()
    if step >= self._last_step:
      # A last epoch cut short by max_steps: end it here, not by running
      # out of data.
      self.model.stop_training = True
    self._hooks.call("after_step", step)

  def on_epoch_end(self, epoch, logs=None):
    if not self._finite:
      if self.model.stop_training:
        logging.warning(
            "Training stopped at step %d, whose loss is not finite: no "
            "checkpoint nor evaluation of it; the newest checkpoint is the "
            "last finite one. Lower the learning rate (or set clip_norm) "
            "and start a new run.", self._saver.step)
        self.finished = True
      return
    self._saver.save_if_new()
    if self.model.stop_training:
      self.finished = True
      self.metrics = self._finish()
      if self.metrics:
        self._epoch_results = keras_logs(self.metrics)
    if logs is not None:
      logs.update(self._epoch_results)


class StepLogger(tf_keras.callbacks.Callback):
  """Per-step loss, LR and gradient norm to train_log.jsonl and TensorBoard.

  Keras reports the mean loss since the start of the epoch, which would
  differ between a resumed and an uninterrupted run; resetting the metric
  before each batch makes the logged loss that step's own. At an epoch end
  `logs["loss"]` becomes the mean of the epoch's step losses (global means,
  steps before a resume read back from the log), the same number with or
  without a resume. On start, log lines after the restored step are
  dropped: those steps run again. A disabled logger (non-chief worker)
  writes nothing.
  """

  def __init__(self, model_dir, state, *, per_epoch, enabled=True,
               replicas=1):
    super().__init__()
    self._state, self._enabled, self._replicas = state, enabled, replicas
    self._per_epoch = per_epoch
    step = int(state.step.numpy())
    if enabled:
      truncate_train_log(model_dir, step)
    # (step, loss) of the current epoch's steps.
    epoch_start = step - step % per_epoch
    self._losses = [(e["step"], e["loss"]) for e in read_train_log(model_dir)
                    if epoch_start < e["step"] <= step]
    if not enabled:
      return
    self._file = fs.open_file(os.path.join(model_dir, rundir.TRAIN_LOG_FILE),
                              "a")
    self._writer = tf.summary.create_file_writer(
        os.path.join(model_dir, rundir.LOGS_SUBDIR, "train"))

  def on_train_batch_begin(self, batch, logs=None):
    self.model.reset_metrics()

  def on_train_batch_end(self, batch, logs=None):
    step = int(self._state.step.numpy())
    loss = float(logs["loss"]) / self._replicas
    self._losses.append((step, loss))
    if not self._enabled:
      return
    lr = optimization.current_learning_rate(self._state.optimizer)
    norm = optimization.last_gradient_norm(self._state.optimizer)
    self._file.write(json.dumps({"step": step, "loss": loss,
                                 "learning_rate": lr,
                                 "gradient_norm": norm}) + "\n")
    with self._writer.as_default(step=step):
      tf.summary.scalar("loss", loss)
      tf.summary.scalar("learning_rate", lr)
      tf.summary.scalar("gradient_norm", norm)

  def on_epoch_end(self, epoch, logs=None):
    losses = [loss for step, loss in self._losses
              if (step - 1) // self._per_epoch == epoch]
    self._losses = [(s, l) for s, l in self._losses
                    if (s - 1) // self._per_epoch > epoch]
    if losses and logs is not None:
      logs["loss"] = sum(losses) / len(losses)

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
  json_files.atomic_write_text(
      os.path.join(model_dir, rundir.TRAIN_LOG_FILE),
      "".join(json.dumps(e) + "\n" for e in entries))
