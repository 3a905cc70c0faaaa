"""Stopping training on SIGTERM/SIGINT without losing a step: the fit callback, one worker or several."""

from __future__ import annotations

import signal

from absl import logging
import tensorflow as tf
import tf_keras

from tfqa import signals
from tfqa.layout import fs
from tfqa.signals import TrainingInterrupted  # pylint: disable=g-importing-member


class StopOnSignal(tf_keras.callbacks.Callback):
  """Saves and stops training at the first step end after a signal.

  The step in flight (with gradient accumulation: all micro-batches and the
  optimizer step) completes, a checkpoint of that step is written, and
  TrainingInterrupted leaves `fit`. Until the first step of this call has
  ended (it traces the train function: minutes on a loaded machine), a
  signal stops at once instead: nothing since the restored checkpoint is
  lost, so nothing is saved. With several workers, they agree on the
  step through tf.distribute.experimental.PreemptionCheckpointHandler,
  which tells every worker to save at the same step (one after the step
  the signalled worker was on) and then exit.

  Args:
    saver: has `save_if_new()` (writes a checkpoint of the current step
      unless one exists) and `step` (the current global step), as
      train_callbacks.Saver.
    total_steps: steps of the whole run.
    cluster: the multi-worker strategy's cluster resolver, or None for one
      worker.
  """

  def __init__(self, saver, *, total_steps: int, cluster=None):
    super().__init__()
    self._save, self._total = saver.save_if_new, total_steps
    self._step = lambda: saver.step
    self._capture = signals.active()
    self._handler = None
    self._stopped = False
    self._stepped = False  # A step of this call has ended.
    self._begin_step = saver.step  # The restored step.
    if self._capture is None:
      return
    self._capture.stop = self._stop_now
    self._capture.reinstall()  # Created after the strategy: see reinstall.
    if cluster is not None:
      self._handler_dir = fs.make_local_temp_dir(prefix="tfqa-preemption-")
      self._handler = _cluster_handler(
          cluster, self._handler_dir, capture=self._capture,
          save=self._save, on_saved=self._mark_stopped)

  def on_train_begin(self, logs=None):
    if self._capture is None:
      return
    self._capture.defer_from_now()
    if self._capture.received and self._handler is None:
      # Between two fit calls: the last step has ended already.
      raise self._stop_now()
    if not self._stepped and self._handler is None:
      self._interruptible_first_step()

  def _interruptible_first_step(self):
    # (Not with several workers: one stopping alone would leave the others
    # waiting in their collectives.)
    model = self.model
    train_function = model.train_function

    def first_step(iterator):
      model.train_function = train_function
      with signals.interruptible():
        return train_function(iterator)

    model.train_function = first_step

  def on_train_batch_end(self, batch, logs=None):
    self._stepped = True
    if self._capture is None:
      return
    if self._handler is not None:
      self._handler.save_checkpoint_if_preempted()
      if self._stopped:
        fs.rmtree(self._handler_dir)
        raise TrainingInterrupted(
            self._capture.signum or signal.SIGTERM, step=self._step(),
            total_steps=self._total, peer=not self._capture.received)
    elif self._capture.received:
      raise self._stop_now()

  def on_train_end(self, logs=None):
    if self._handler is not None:
      fs.rmtree(self._handler_dir)  # The handler's own step counter.

  def _mark_stopped(self):
    self._stopped = True

  def _stop_now(self) -> TrainingInterrupted:
    """Saves the current step; returns the exception that reports it."""
    if not self._stepped:
      # The first step, cut short, is redone from the restored checkpoint.
      return TrainingInterrupted(
          self._capture.signum, step=self._begin_step or None,
          total_steps=self._total)
    with signals.deferred():
      self._save()
    return TrainingInterrupted(self._capture.signum, step=self._step(),
                               total_steps=self._total)


def _cluster_handler(cluster_resolver, directory, *, capture, save, on_saved):
  """A PreemptionCheckpointHandler that saves through `save` on a signal.

  Its own checkpoint (a step counter it restores) lives in `directory`,
  apart from the run's checkpoints, which `save` writes; its signal watcher
  polls `capture` instead of replacing the SIGTERM handler.
  """
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(), directory,
                                       max_to_keep=1)
  # The handler's watcher thread calls termination_watcher_fn, then sleeps a
  # second. A watcher that waits for the signal wakes the moment it lands,
  # so the workers stop one step after it, not a second later (with fast
  # steps, a second was enough to reach the end of training: no stop).
  config = tf.distribute.experimental.TerminationConfig(
      termination_watcher_fn=lambda: capture.wait(timeout=1.0),
      exit_fn=on_saved, grace_period=0,
      save_fn=lambda *args, **kwargs: save())
  logging.info("Multi-worker preemption: tf.distribute.experimental."
               "PreemptionCheckpointHandler aligns the workers' last step.")
  return tf.distribute.experimental.PreemptionCheckpointHandler(
      cluster_resolver, manager, termination_config=config)
