"""Training with Keras fit that never loses progress: resumable fit loop, then evaluation."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from typing import Callable, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

from tfqa import config as config_lib
from tfqa import errors
from tfqa import preflight
from tfqa import signals
from tfqa.data import pipeline
from tfqa.data import squad as squad_lib
from tfqa.inference import run_evaluation
from tfqa.layout import best_checkpoint
from tfqa.layout import checkpointing
from tfqa.layout import fs
from tfqa.layout import rundir
from tfqa.model import source as model_source
from tfqa.training import callbacks as train_callbacks
from tfqa.training import distribution
from tfqa.training import evaluator as train_evaluation
from tfqa.training import inputs
from tfqa.training import preemption
from tfqa.training import progress
from tfqa.training import state as train_state
from tfqa.training import time_budget
# The step log's reader, public here where the runs are made.
from tfqa.training.callbacks import read_train_log  # pylint: disable=unused-import


@dataclasses.dataclass(frozen=True)
class TrainingHooks:
  """Named points of a run where a caller observes it or injects a fault.

  The seam for tests and tools (crash campaigns, multi-worker checks): each
  field is a function called at that point, or None. Steps are global steps
  (1-based: the step that just ran). Hooks run on every worker, in the
  training process; an exception ends the run like any error there.
  """

  # The run's Keras fit starts at this step (once per call).
  fit_begin: Callable[[int], None] | None = None
  # Step N ran; its evaluation and checkpoint, when due, are done.
  after_step: Callable[[int], None] | None = None
  # (step, index): micro-batch `index` of the step being computed has its
  # gradients (gradient_accumulation_steps > 1 only; inside the train step).
  after_micro_batch: Callable[[int, int], None] | None = None
  # A checkpoint of step N is about to be written / was written.
  before_save: Callable[[int], None] | None = None
  after_save: Callable[[int], None] | None = None
  # An evaluation of step N (during training or at the end) starts / ended
  # (its outputs, TensorBoard scalars and best checkpoint written).
  before_eval: Callable[[int], None] | None = None
  after_eval: Callable[[int], None] | None = None
  # Training is over (the model holds the final weights); evaluation next.
  training_done: Callable[[tf_keras.Model], None] | None = None

  def call(self, name: str, *args) -> None:
    hook = getattr(self, name)
    if hook is not None:
      hook(*args)


@dataclasses.dataclass(frozen=True)
class TrainResult:
  """What a call to `train_and_evaluate` achieved."""

  global_step: int
  total_steps: int
  resumed_from: str | None  # checkpoint restored at start, if any
  checkpoint: str | None  # latest checkpoint at the end
  metrics: dict | None  # eval metrics, when there was eval data
  steps_run: int = 0  # steps trained by this call
  windows_run: int = 0  # windows (features) trained on by this call
  train_seconds: float = 0.0  # wall time of those steps, saves included
  # Warm start: the checkpoint whose model weights this run started from.
  initialized_from: str | None = None
  best_checkpoint: str | None = None  # --keep_best's, at the end


def configure_runtime(train_config: config_lib.TrainConfig, *,
                      mixed_precision: str) -> None:
  """Sets the process-global TF state a run needs (the one place that does).

  Seeds Python, NumPy and TF; makes dropout draw from checkpointable
  tf.random.Generators; turns op determinism on with `deterministic`; sets
  the Keras mixed precision policy (resolved, see
  distribution.mixed_precision_policy).
  """
  tf_keras.utils.set_random_seed(train_config.seed)
  tf_keras.backend.experimental.enable_tf_random_generator()
  if train_config.deterministic:
    tf.config.experimental.enable_op_determinism()
  tf_keras.mixed_precision.set_global_policy(mixed_precision)


@signals.stops_on_signals
def train_and_evaluate(
    run_config: config_lib.RunConfig, model_dir: str, *,
    verbose: str | int = "auto",
    callbacks: Sequence[tf_keras.callbacks.Callback] = (),
    progress_every_steps: int = config_lib.PROGRESS_EVERY_STEPS,
    hooks: TrainingHooks | None = None,
    source: model_source.ModelSource | None = None) -> TrainResult:
  """Trains (resuming from the latest readable checkpoint) and evaluates.

  Under a multi-worker strategy every worker runs this with the same
  arguments; only the chief writes to `model_dir` (the others save their
  share of each checkpoint to a temporary directory they delete), and every
  worker resumes from the chief's newest readable checkpoint.

  Args:
    run_config: every setting of the run; checked against
      `model_dir/run_config.json` when resuming (see rundir.reconcile).
    model_dir: holds run_config.json, checkpoints/, logs/, train_log.jsonl,
      tokenizer/, bert_config.json and eval/.
    verbose: "auto": Keras' progress bar when stdout is a terminal or a
      notebook, else a line every `progress_every_steps` steps
      (progress.ProgressLines); 0, 1 or 2: Keras fit's own verbosity.
    callbacks: your `tf_keras.callbacks.Callback`s (under
      TF_USE_LEGACY_KERAS=1, `tf.keras.callbacks` are these), run after
      tfqa's own, in one Keras fit over the run (docs/TRAINING.md, "Keras
      callbacks"): Keras epochs are the data's; `logs["loss"]` is the step's
      loss at a batch end (summed over replicas), the epoch's mean at its
      end; evaluations add val_exact_match, val_f1 (v2.0: val_best_f1,
      val_has_ans_f1, val_no_ans_f1) to their step's and epoch's logs. A
      callback that sets `model.stop_training` ends training at that step,
      with a checkpoint and the final evaluation; the same call extends the
      run later. train_callbacks.check_callbacks lists those refused.
    progress_every_steps: steps between progress lines (verbose="auto"
      without a terminal).
    hooks: functions called at named points of the run (TrainingHooks).
    source: what preflight.check_train(run_config, model_dir) returned (the
      run's inputs are checked and its model resolved: tfqa.train passes
      it, so a hub name is looked up once); None: checked here.

  Returns:
    The TrainResult.

  Raises:
    signals.TrainingInterrupted: (a KeyboardInterrupt) on SIGTERM or SIGINT,
      after saving the step in flight (preemption.StopOnSignal); call again.
    ValueError: a callback that is not a tf_keras callback or one tfqa
      refuses, another verbose
      value, a progress_every_steps that is not a positive integer; and what
      the run's data and checkpoints raise;
      an input of the wrong kind, a model that cannot be found or
      cannot embed max_seq_length tokens (see preflight.check_train), before
      anything is written.
  """
  called_at = time.perf_counter()
  callbacks = train_callbacks.check_callbacks(callbacks)
  hooks = hooks or TrainingHooks()
  _check_arguments(hooks=hooks, verbose=verbose,
                   progress_every_steps=progress_every_steps)
  if source is None:
    source = preflight.check_train(run_config, model_dir)
  train = run_config.train
  # Multi-worker collectives must be configured before other TF work.
  strategy = distribution.make_strategy(train.distribution_strategy,
                                        tpu=train.tpu)
  distribution.check_gpu(strategy, require_gpu=train.require_gpu)
  chief = distribution.is_chief(strategy)
  fs.makedirs(model_dir)
  # One trainer per run directory: the chief holds it for all workers.
  with rundir.TrainerLock(model_dir) if chief else contextlib.nullcontext():
    return _train_and_evaluate(
        run_config, model_dir, source=source, strategy=strategy, chief=chief,
        callbacks=callbacks, hooks=hooks, verbose=verbose,
        progress_every_steps=progress_every_steps, called_at=called_at)


def _check_arguments(*, hooks, verbose, progress_every_steps):
  """Raises ValueError for hooks, verbose or progress_every_steps of the
  wrong kind."""
  if not isinstance(hooks, TrainingHooks):
    raise errors.ArgumentError("hooks", hooks,
                               "Expected a training.TrainingHooks.")
  if verbose not in ("auto", 0, 1, 2) or isinstance(verbose, bool):
    raise errors.ArgumentError("verbose", verbose,
                               "Expected 'auto', 0, 1 or 2.")
  if (not isinstance(progress_every_steps, int) or
      isinstance(progress_every_steps, bool) or progress_every_steps <= 0):
    raise errors.ArgumentError("progress_every_steps", progress_every_steps,
                               "Expected a positive integer.")


@dataclasses.dataclass(frozen=True)
class _Run:
  """A run set up to train: its settings, data, state and where it starts."""

  run_config: config_lib.RunConfig  # reconciled with run_config.json
  model_dir: str
  strategy: tf.distribute.Strategy
  chief: bool
  data: inputs.TrainingData
  state: checkpointing.TrainingState
  per_epoch: int  # steps per epoch
  steps: int  # steps of the whole run
  resumed_from: str | None  # checkpoint restored, if any
  initialized_from: str | None  # --init_checkpoint's, on a warm start
  # Eval data a time budget loaded to time it, for the evaluator to reuse;
  # None: the evaluator loads it when first needed.
  eval_data: squad_lib.SquadData | None = None

  @property
  def single_worker(self) -> bool:
    return distribution.num_workers(self.strategy) == 1


def _train_and_evaluate(run_config, model_dir, *, source, strategy, chief,
                        callbacks, hooks, verbose, progress_every_steps,
                        called_at):
  """train_and_evaluate once its arguments are checked (and, on the chief,
  the run directory is held)."""
  run = _set_up(run_config, model_dir, source=source, strategy=strategy,
                chief=chief, hooks=hooks, called_at=called_at)
  train, state = run.run_config.train, run.state
  first_step = int(state.step.numpy())
  logger = train_callbacks.StepLogger(
      model_dir, state, per_epoch=run.per_epoch, enabled=chief,
      replicas=strategy.num_replicas_in_sync)
  write_checkpoint, cleanup = train_state.checkpoint_writer(
      state, model_dir, train, chief)
  saver = train_callbacks.Saver(
      write_checkpoint, state, run.per_epoch, before_save=logger.flush,
      hooks=hooks)
  evaluator = train_evaluation.TrainingEvaluator(
      state, run.data.tokenizer, run.run_config, model_dir, hooks=hooks,
      data=run.eval_data)
  if train.eval_every_steps and not run.single_worker:
    logging.warning("Multi-worker run: no evaluation during training "
                    "(--eval_every_steps=%d); evaluate checkpoints with "
                    "tfqa_eval.", train.eval_every_steps)
  finish = _Finish(run, evaluator, hooks)
  step_end = train_callbacks.StepEnd(
      saver, save_every=train.save_every_steps,
      evaluate=evaluator if chief and run.single_worker else None,
      eval_every=train.eval_every_steps, last_step=run.steps, hooks=hooks,
      finish=finish, per_epoch=run.per_epoch)
  verbose, progress_lines = _progress_display(
      run, verbose, every_steps=progress_every_steps)
  started = time.perf_counter()
  try:
    stopper = preemption.StopOnSignal(saver, total_steps=run.steps, cluster=(
        None if run.single_worker else strategy.cluster_resolver))
    step = _fit(state, run.data.features, run.run_config, strategy,
                callbacks=[logger, step_end, *progress_lines, *callbacks,
                           stopper],
                per_epoch=run.per_epoch, steps=run.steps,
                verbose=verbose)
  finally:
    cleanup()
  logger.close()
  # Inside fit the last epoch's end finishes the run; a run with no step
  # left, or stopped by a callback at an epoch end, finishes here.
  metrics = step_end.metrics if step_end.finished else finish()
  train_seconds = (finish.trained_at or time.perf_counter()) - started
  evaluator.close()
  return _result(run, step=step, first_step=first_step, metrics=metrics,
                 train_seconds=train_seconds)


def _set_up(run_config, model_dir, *, source, strategy, chief, hooks,
            called_at) -> _Run:
  """Reconciles the run directory, sets the runtime, then builds the data
  and the state (resumed, warm-started or fresh).

  run_config.json is written once the data has loaded (and a time budget
  has chosen the epochs): a data file that cannot be used leaves no run
  behind.
  """
  has_progress = bool(checkpointing.candidate_checkpoints(model_dir))
  if run_config.train.time_budget and has_progress:
    # rundir.reconcile reads the file again; only a budgeted run needs it
    # first, so other starts read it once.
    run_config = time_budget.keep_recorded_epochs(
        run_config, rundir.read_run_config(model_dir))
  run_config = rundir.reconcile(model_dir, run_config, write=False,
                                has_progress=has_progress)
  train = run_config.train
  time_budget.check_single_worker(train, distribution.num_workers(strategy))
  policy = distribution.mixed_precision_policy(train.mixed_precision,
                                               strategy)
  configure_runtime(train, mixed_precision=policy)
  inputs.check_micro_batches(train, strategy.num_replicas_in_sync)
  data = inputs.prepare_data(run_config, source)
  per_epoch = pipeline.steps_per_epoch(len(data.features),
                                             train.train_batch_size)
  eval_data = None
  if train.time_budget and not has_progress:
    eval_data = train_evaluation.load_eval_data(run_config.data)
    run_config = _fit_time_budget(run_config, data, eval_data, strategy,
                                  policy, per_epoch=per_epoch,
                                  called_at=called_at)
    train = run_config.train
  if chief:
    rundir.record_run_config(model_dir, run_config)
  steps = inputs.total_steps(len(data.features), train)
  logging.info("%d examples -> %d windows; %d steps per epoch, %d in all; "
               "%s, global batch %d%s.", data.num_examples,
               len(data.features), per_epoch, steps,
               distribution.describe_devices(strategy), train.train_batch_size,
               inputs.micro_batch_note(train,
                                           strategy.num_replicas_in_sync))
  state = train_state.build_state(strategy, data.source, train, steps,
                                  loss_scaling=policy == "mixed_float16",
                                  after_micro_batch=hooks.after_micro_batch)
  if chief:
    train_state.save_model_assets(model_dir, state.model, data.tokenizer)
  resumed_from, initialized_from = _restore(
      state, run_config, model_dir, per_epoch=per_epoch, source=data.source)
  return _Run(run_config, model_dir, strategy, chief, data, state, per_epoch,
              steps, resumed_from, initialized_from, eval_data)


def _fit_time_budget(run_config, data, eval_data, strategy, policy, *,
                     per_epoch, called_at):
  """run_config with the epochs its time budget fits, measured on a
  throwaway model (its training steps and, for a run that evaluates, its
  evaluation of a few eval questions); the process's seeds are then set
  again, so the run is the one `--num_train_epochs` at that count would
  make."""
  train = run_config.train

  # Epoch 0's plan serves the timed steps and the prediction: made once.
  @functools.lru_cache(maxsize=1)
  def epoch_tokens(epoch):
    return pipeline.padded_tokens(
        data.features.lengths, batch_size=train.train_batch_size,
        seed=train.seed, epoch=epoch, pipeline_config=run_config.pipeline,
        max_seq_length=run_config.features.max_seq_length)

  steps = time_budget.CALIBRATION_STEPS
  first_steps = np.concatenate([epoch_tokens(e) for e in range(
      -(-steps // per_epoch))])[:steps]

  def build():
    return train_state.build_state(strategy, data.source, train, 1,
                                   loss_scaling=policy == "mixed_float16",
                                   log_weights=False)

  def train_steps(state, callbacks):
    _fit(state, data.features, run_config, strategy, callbacks=callbacks,
         per_epoch=per_epoch, steps=steps, verbose=0)

  def time_evaluation(state):
    return time_budget.calibrate_evaluation(
        lambda examples: run_evaluation.evaluate(
            state.model, examples, data.tokenizer, run_config=run_config),
        eval_data.examples, every_steps=train.eval_every_steps,
        seed=train.seed, computed_tokens=lambda examples: (
            run_evaluation.computed_tokens(examples, data.tokenizer,
                                           run_config=run_config)))

  calibration = time_budget.calibrate(
      build, train_steps, batch_size=train.train_batch_size,
      step_tokens=first_steps,
      time_evaluation=(time_evaluation if eval_data and eval_data.examples
                       else None))
  configure_runtime(train, mixed_precision=policy)
  return time_budget.fit_epochs(
      run_config, epoch_tokens=epoch_tokens,
      spent_seconds=time.perf_counter() - called_at, calibration=calibration)


def _restore(state, run_config, model_dir, *, per_epoch, source):
  """(resumed_from, initialized_from): the run's newest readable checkpoint
  restored, else --init_checkpoint's weights loaded, else (None, None)."""
  resumed_from = checkpointing.latest_readable(model_dir)
  init_checkpoint = run_config.model.init_checkpoint
  if resumed_from:
    checkpointing.restore(state, resumed_from)
    train_state.check_data_position(state, per_epoch, resumed_from)
    if init_checkpoint:
      logging.info("Resuming from %s; --init_checkpoint=%s served only the "
                   "run's start.", resumed_from, init_checkpoint)
    return resumed_from, None
  if init_checkpoint:
    return None, train_state.warm_start(state, init_checkpoint,
                                        source=source)
  return None, None


class _Finish:
  """The end of training: the hook, then the final evaluation's metrics."""

  def __init__(self, run: _Run, evaluator, hooks: TrainingHooks):
    self._run = run
    self._evaluator = evaluator
    self._hooks = hooks
    # When training ended (the final evaluation is not in it).
    self.trained_at: float | None = None

  def __call__(self) -> dict | None:
    run = self._run
    if self.trained_at is None:
      self.trained_at = time.perf_counter()
    self._hooks.call("training_done", run.state.model)
    if not run.single_worker:
      # The chief alone would run collectives the other workers never join.
      logging.info("Multi-worker run: evaluate with `tfqa_eval --model_dir="
                   "%s`.", run.model_dir)
    elif run.chief and self._evaluator.has_data:
      return self._evaluator.evaluate(
          int(run.state.step.numpy()), final=True,
          checkpoint=checkpointing.latest_readable(run.model_dir))
    elif run.chief:
      logging.info("No eval data configured; skipping evaluation.")
    return None


def _progress_display(run, verbose, *, every_steps):
  """(Keras fit's verbose, tfqa's progress callbacks): "auto" is Keras' bar
  on a terminal or notebook, else progress lines on the chief."""
  if verbose != "auto":
    return verbose, []
  if progress.is_interactive():
    return 1, []
  if not run.chief:
    return 0, []
  return 0, [progress.ProgressLines(
      total_steps=run.steps, steps_per_epoch=run.per_epoch,
      batch_size=run.run_config.train.train_batch_size,
      every_steps=every_steps,
      loss_divisor=run.strategy.num_replicas_in_sync)]


def _result(run, *, step, first_step, metrics, train_seconds) -> TrainResult:
  train = run.run_config.train
  latest = checkpointing.latest_readable(run.model_dir)
  best = best_checkpoint.read_record(run.model_dir)
  return TrainResult(
      step, run.steps, run.resumed_from, latest, metrics,
      steps_run=step - first_step,
      windows_run=(step - first_step) * train.train_batch_size,
      train_seconds=train_seconds, initialized_from=run.initialized_from,
      best_checkpoint=(os.path.join(run.model_dir, best["checkpoint"])
                       if best and train.keep_best != "none" else None))


def _fit(state, train_features, run_config, strategy, *, callbacks,
         per_epoch, steps, verbose):
  """Runs one Keras fit from the state's step to `steps`; returns the step.

  Keras epochs are the data's (steps_per_epoch=per_epoch); a run resumed
  inside an epoch starts Keras at that batch of it
  (train_callbacks.start_keras_at_step), so its first epoch is shorter and
  every step keeps its global number and batch. The dataset holds exactly
  the steps left; StepEnd stops fit at the last one.
  """
  train = run_config.train
  step = int(state.step.numpy())
  if step >= steps:
    return step
  epochs = -(-steps // per_epoch)
  dataset = distribution.distribute_train_dataset(
      strategy, functools.partial(
          pipeline.train_dataset, train_features,
          batch_size=train.train_batch_size, seed=train.seed,
          num_epochs=epochs,
          max_seq_length=run_config.features.max_seq_length,
          pipeline_config=run_config.pipeline, start_step=step,
          stop_step=steps))
  if (isinstance(dataset, tf.data.Dataset) and steps - step == per_epoch and
      step % per_epoch):
    # Keras restarts a dataset of exactly steps_per_epoch batches at every
    # epoch; this one spans two (a resume inside an epoch, max_steps inside
    # the next). Repeated, it is read once, through: StepEnd stops fit at
    # its end.
    dataset = dataset.repeat()
  try:
    state.model.fit(dataset, epochs=epochs, initial_epoch=step // per_epoch,
                    steps_per_epoch=per_epoch, callbacks=callbacks,
                    verbose=verbose)
  finally:
    state.model._training_state = None  # pylint: disable=protected-access
  step = int(state.step.numpy())
  if step < steps and not state.model.stop_training:
    raise RuntimeError(f"Training stopped at step {step}, expected {steps}.")
  if step < steps:
    logging.info("A callback stopped training at step %d of %d.", step,
                 steps)
  return step
