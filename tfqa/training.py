"""Training with Keras fit that never loses progress: resumable fit loop, then evaluation."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from typing import Callable, Sequence

from absl import logging
import tensorflow as tf
import tf_keras

from tfqa import accumulation
from tfqa import best_checkpoint
from tfqa import checkpointing
from tfqa import config as config_lib
from tfqa import data as data_lib
from tfqa import distribution
from tfqa import features as features_lib
from tfqa import input_pipeline
from tfqa import io_utils
from tfqa import modeling
from tfqa import optimization
from tfqa import progress
from tfqa import preemption
from tfqa import preflight
from tfqa import rundir
from tfqa import signals
from tfqa import train_callbacks
from tfqa import train_evaluation
from tfqa.layout import fs
from tfqa.model import source as model_source
# The step log's reader, public here where the runs are made.
from tfqa.train_callbacks import read_train_log  # pylint: disable=unused-import


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


def load_train_data(data_config: config_lib.DataConfig, *,
                    version_2_with_negative: bool) -> data_lib.SquadData:
  """Training examples from the file or TFDS, checked against the version.

  Raises:
    ValueError: no training data configured, or unanswerable questions in a
      v1.1 run.
  """
  if data_config.train_file:
    squad = data_lib.load_squad_json(data_config.train_file)
    source = data_config.train_file
  elif data_config.tfds_dataset:
    squad = data_lib.load_tfds_squad(data_config.tfds_dataset, split="train",
                                     data_dir=data_config.tfds_data_dir)
    source = data_config.tfds_dataset
  else:
    raise ValueError("No training data: pass --train_file (SQuAD JSON) or "
                     "--tfds_dataset (squad/v1.1 or squad/v2.0).")
  if data_config.answerable_only:
    squad = data_lib.answerable_only(squad)
  if squad.has_impossible and not version_2_with_negative:
    impossible = sum(e.is_impossible for e in squad.examples)
    raise ValueError(
        f"{source} has {impossible} unanswerable questions but the run is "
        f"SQuAD v1.1-style. Pass --version_2_with_negative to learn "
        f"no-answer predictions, or --answerable_only to drop them.")
  if not squad.examples:
    raise ValueError(f"{source} holds no usable training examples.")
  return squad


def total_steps(num_windows: int, train_config: config_lib.TrainConfig) -> int:
  """Steps of the whole run: all epochs, capped by max_steps."""
  steps = input_pipeline.steps_per_epoch(
      num_windows, train_config.train_batch_size) * train_config.num_train_epochs
  return min(steps, train_config.max_steps) if train_config.max_steps else steps


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
  callbacks = train_callbacks.check_callbacks(callbacks)
  hooks = hooks or TrainingHooks()
  if not isinstance(hooks, TrainingHooks):
    raise ValueError(f"Invalid value for argument `hooks`. Received: hooks="
                     f"{hooks!r}. Expected a training.TrainingHooks.")
  if verbose not in ("auto", 0, 1, 2) or isinstance(verbose, bool):
    raise ValueError(f"Invalid value for argument `verbose`. Received: "
                     f"verbose={verbose!r}. Expected 'auto', 0, 1 or 2.")
  if (not isinstance(progress_every_steps, int) or
      isinstance(progress_every_steps, bool) or progress_every_steps <= 0):
    raise ValueError(f"Invalid value for argument `progress_every_steps`. "
                     f"Received: progress_every_steps={progress_every_steps!r}"
                     f". Expected a positive integer.")
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
        progress_every_steps=progress_every_steps)


def _train_and_evaluate(run_config, model_dir, *, source, strategy, chief,
                        callbacks, hooks, verbose, progress_every_steps):
  """train_and_evaluate once its arguments are checked (and, on the chief,
  the run directory is held)."""
  run_config = rundir.reconcile(
      model_dir, run_config, write=chief,
      has_progress=bool(checkpointing.candidate_checkpoints(model_dir)))
  train = run_config.train
  policy = distribution.mixed_precision_policy(train.mixed_precision,
                                               strategy)
  configure_runtime(train, mixed_precision=policy)
  _check_micro_batches(train, strategy.num_replicas_in_sync)
  data = _prepare_data(run_config, source)
  per_epoch = input_pipeline.steps_per_epoch(len(data.features),
                                             train.train_batch_size)
  steps = total_steps(len(data.features), train)
  logging.info("%d examples -> %d windows; %d steps per epoch, %d in all; "
               "%s, global batch %d%s.", data.num_examples,
               len(data.features), per_epoch, steps,
               distribution.describe_devices(strategy), train.train_batch_size,
               _micro_batch_note(train, strategy.num_replicas_in_sync))
  state = _build_state(strategy, data.source, train, steps,
                       loss_scaling=policy == "mixed_float16",
                       after_micro_batch=hooks.after_micro_batch)
  if chief:
    _save_model_assets(model_dir, state.model, data.tokenizer)
  resumed_from = checkpointing.latest_readable(model_dir)
  initialized_from = None
  if resumed_from:
    checkpointing.restore(state, resumed_from)
    _check_data_position(state, per_epoch, resumed_from)
    if run_config.model.init_checkpoint:
      logging.info("Resuming from %s; --init_checkpoint=%s served only the "
                   "run's start.", resumed_from,
                   run_config.model.init_checkpoint)
  elif run_config.model.init_checkpoint:
    initialized_from = warm_start(state, run_config.model.init_checkpoint,
                                  source=data.source)
  first_step = int(state.step.numpy())
  logger = train_callbacks.StepLogger(
      model_dir, state, per_epoch=per_epoch, enabled=chief,
      replicas=strategy.num_replicas_in_sync)
  write_checkpoint, cleanup = _checkpoint_writer(state, model_dir, train,
                                                 chief)
  saver = train_callbacks.Saver(
      write_checkpoint, state, per_epoch, before_save=logger.flush,
      hooks=hooks)
  evaluator = train_evaluation.TrainingEvaluator(
      state, data.tokenizer, run_config, model_dir, hooks=hooks)
  single_worker = distribution.num_workers(strategy) == 1
  if train.eval_every_steps and not single_worker:
    logging.warning("Multi-worker run: no evaluation during training "
                    "(--eval_every_steps=%d); evaluate checkpoints with "
                    "tfqa_eval.", train.eval_every_steps)

  trained = []  # When training ended (the final evaluation is not in it).

  def finish():
    """The end of training: the hook, then the final evaluation's metrics."""
    trained.append(time.perf_counter())
    hooks.call("training_done", state.model)
    if not single_worker:
      # The chief alone would run collectives the other workers never join.
      logging.info("Multi-worker run: evaluate with `tfqa_eval --model_dir="
                   "%s`.", model_dir)
    elif chief and evaluator.has_data:
      return evaluator.evaluate(int(state.step.numpy()), final=True,
                                checkpoint=checkpointing.latest_readable(
                                    model_dir))
    elif chief:
      logging.info("No eval data configured; skipping evaluation.")
    return None

  step_end = train_callbacks.StepEnd(
      saver, save_every=train.save_every_steps,
      evaluate=evaluator if chief and single_worker else None,
      eval_every=train.eval_every_steps, last_step=steps, hooks=hooks,
      finish=finish, per_epoch=per_epoch)
  own_callbacks = [logger, step_end]
  if verbose == "auto":
    verbose = 1 if progress.is_interactive() else 0
    if not verbose and chief:
      own_callbacks.append(progress.ProgressLines(
          total_steps=steps, steps_per_epoch=per_epoch,
          batch_size=train.train_batch_size,
          every_steps=progress_every_steps,
          loss_divisor=strategy.num_replicas_in_sync))
  started = time.perf_counter()
  try:
    stopper = preemption.StopOnSignal(saver, total_steps=steps, cluster=(
        None if single_worker else strategy.cluster_resolver))
    step = _fit(state, data.features, run_config, strategy,
                callbacks=own_callbacks + callbacks + [stopper],
                per_epoch=per_epoch, steps=steps,
                verbose=verbose)
  finally:
    cleanup()
  logger.close()
  # Inside fit the last epoch's end finishes the run; a run with no step
  # left, or stopped by a callback at an epoch end, finishes here.
  metrics = step_end.metrics if step_end.finished else finish()
  train_seconds = (trained[0] if trained else time.perf_counter()) - started
  evaluator.close()
  latest = checkpointing.latest_readable(model_dir)
  best = best_checkpoint.read_record(model_dir)
  return TrainResult(
      step, steps, resumed_from, latest, metrics,
      steps_run=step - first_step,
      windows_run=(step - first_step) * train.train_batch_size,
      train_seconds=train_seconds, initialized_from=initialized_from,
      best_checkpoint=(os.path.join(model_dir, best["checkpoint"])
                       if best and train.keep_best != "none" else None))


def warm_start(state: checkpointing.TrainingState, init_checkpoint: str, *,
               source: model_source.ModelSource) -> str:
  """Loads another run's model weights into a fresh state (--init_checkpoint).

  Only the weights: the optimizer (slots and step) stays fresh, so the
  step is 0 and the LR schedule starts over; the dropout generators keep
  this run's seed. (A compiled Keras model tracks its optimizer, so the
  weights are restored into a model of their own and copied over.)

  Args:
    state: the new run's state, before any step.
    init_checkpoint: a tfqa_train run directory (its newest readable
      checkpoint) or a checkpoint prefix.
    source: what the run's model is built from (its architecture).

  Returns:
    The checkpoint prefix the weights came from.

  Raises:
    CheckpointError: no readable checkpoint there, or one written for
      another architecture (the differing weights are listed).
  """
  prefix = init_checkpoint
  if fs.isdir(init_checkpoint):
    prefix = checkpointing.latest_readable(init_checkpoint)
    if prefix is None:
      raise checkpointing.CheckpointError(
          f"--init_checkpoint={init_checkpoint} holds no checkpoint; expected "
          f"a tfqa_train --model_dir that has trained, or a checkpoint "
          f"prefix.")
  try:
    checkpointing.verify_readable(prefix)
    loaded, _ = modeling.build_model(source, dropout=False)
    checkpointing.restore_model(loaded, prefix)
  except checkpointing.CheckpointError as e:
    raise checkpointing.CheckpointError(
        f"--init_checkpoint={init_checkpoint}: {e}".replace(
            "Use the model config the run was started with (see "
            "run_config.json).",
            "Expected a checkpoint of the architecture this run builds: "
            "pass the --model or --bert_config_file that run used.")
    ) from None
  for weight, value in zip(state.model.weights, loaded.weights):
    weight.assign(value)
  logging.info("Warm start: model weights from %s; the optimizer, step (0) "
               "and LR schedule start fresh (this is a new run, not a "
               "resume).", prefix)
  return prefix


def _check_micro_batches(train, replicas):
  micro = train.train_batch_size // train.gradient_accumulation_steps
  if train.gradient_accumulation_steps > 1 and micro % replicas:
    raise ValueError(
        f"Invalid value for argument `train_batch_size`. Received: "
        f"train_batch_size={train.train_batch_size} with "
        f"gradient_accumulation_steps={train.gradient_accumulation_steps} on "
        f"{replicas} replicas. Expected a multiple of replicas x "
        f"gradient_accumulation_steps = "
        f"{replicas * train.gradient_accumulation_steps} (each replica "
        f"takes an equal share of every micro-batch).")


def _micro_batch_note(train, replicas):
  k = train.gradient_accumulation_steps
  if k == 1:
    return ""
  return (f" = {k} micro-batches x {train.train_batch_size // k // replicas} "
          f"windows x {replicas} replica(s)")


@dataclasses.dataclass(frozen=True)
class _TrainingData:
  num_examples: int
  source: model_source.ModelSource
  tokenizer: object
  features: features_lib.Features


def _prepare_data(run_config, source):
  squad = load_train_data(run_config.data,
                          version_2_with_negative=run_config.decode
                          .version_2_with_negative)
  tokenizer = features_lib.load_tokenizer(
      source.tokenizer_path, do_lower_case=run_config.model.do_lower_case)
  features = features_lib.build_features(squad.examples, tokenizer,
                                         run_config.features)
  return _TrainingData(len(squad.examples), source, tokenizer, features)


def _build_state(strategy, source, train, steps, *, loss_scaling,
                 after_micro_batch=None):
  with strategy.scope():
    model, report = modeling.build_model(source)
    modeling.log_weights_report(report)
    optimizer = optimization.create_optimizer(
        learning_rate=train.learning_rate, total_steps=steps,
        warmup_ratio=train.warmup_ratio, weight_decay=train.weight_decay,
        clip_norm=train.clip_norm, epsilon=train.adam_epsilon,
        mixed_float16=loss_scaling)
    model.compile(optimizer=optimizer, jit_compile=train.jit_compile)
    # Keras sums each replica's own mean loss into the logs (TPUs would log
    # replica 0's alone); summing everywhere lets the logger divide by the
    # replica count to get the global mean.
    model.distribute_reduction_method = "sum"
    if train.gradient_accumulation_steps > 1:
      accumulation.install(model, steps=train.gradient_accumulation_steps,
                           after_micro_batch=after_micro_batch)
  return checkpointing.new_state(model, optimizer, seed=train.seed,
                                 strategy=strategy)


def _checkpoint_writer(state, model_dir, train, chief):
  """(save fn, cleanup fn): saves go to model_dir on the chief, else to a
  temporary directory whose files are deleted at once (every worker must take
  part in a multi-worker save, with the same Checkpoint object each time:
  a new one would create, and broadcast, a new save counter)."""
  if chief:
    manager = checkpointing.make_manager(state, model_dir,
                                         keep=train.keep_checkpoints)
    return lambda: checkpointing.save(manager, state), lambda: None
  scratch = fs.make_local_temp_dir(prefix="tfqa-worker-ckpt-")
  manager = checkpointing.make_manager(state, scratch, keep=1)

  def save_and_discard():
    checkpointing.save(manager, state)
    for path in fs.glob(manager.directory, "*"):
      fs.remove(path)

  return save_and_discard, lambda: fs.rmtree(scratch)


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
          input_pipeline.train_dataset, train_features,
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


def _save_model_assets(model_dir, model, tokenizer):
  """Tokenizer and BERT config beside the checkpoints, for eval and export."""
  tokenizer_dir = os.path.join(model_dir, rundir.TOKENIZER_SUBDIR)
  if not fs.isdir(tokenizer_dir):
    tmp = tokenizer_dir + ".tmp"
    fs.rmtree(tmp)  # a copy a killed run left
    with fs.local_dir_for(tmp) as local:  # HF writes local files only
      tokenizer.save_pretrained(local)
    fs.rename(tmp, tokenizer_dir)
  io_utils.atomic_write_json(os.path.join(model_dir, rundir.BERT_CONFIG_FILE),
                             modeling.bert_config_dict(model))


def _check_data_position(state, per_epoch, prefix):
  step, epoch = int(state.step.numpy()), int(state.epoch.numpy())
  if epoch != step // per_epoch:
    raise checkpointing.CheckpointError(
        f"Checkpoint {prefix} is at step {step} of epoch {epoch}, but the "
        f"training data now has {per_epoch} steps per epoch (step {step} "
        f"would be epoch {step // per_epoch}). The training data or batch "
        f"size changed since the run started; use a new --model_dir.")
