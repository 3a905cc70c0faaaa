"""Training with Keras fit that never loses progress: resumable fit loop, then evaluation."""

from __future__ import annotations

import dataclasses
import json
import os
import time

from absl import logging
import tensorflow as tf
import tf_keras

from tfqa import checkpointing
from tfqa import config as config_lib
from tfqa import data as data_lib
from tfqa import distribution
from tfqa import evaluation
from tfqa import features as features_lib
from tfqa import input_pipeline
from tfqa import io_utils
from tfqa import modeling
from tfqa import optimization
from tfqa import rundir



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


def configure_runtime(train_config: config_lib.TrainConfig) -> None:
  """Sets the process-global TF state a run needs (the one place that does).

  Seeds Python, NumPy and TF; makes dropout draw from checkpointable
  tf.random.Generators; turns op determinism on with `deterministic`; sets
  the Keras mixed precision policy.
  """
  tf_keras.utils.set_random_seed(train_config.seed)
  tf_keras.backend.experimental.enable_tf_random_generator()
  if train_config.deterministic:
    tf.config.experimental.enable_op_determinism()
  tf_keras.mixed_precision.set_global_policy(train_config.mixed_precision)


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


def load_eval_data(data_config: config_lib.DataConfig
                   ) -> data_lib.SquadData | None:
  """Eval examples: eval_file, else the TFDS validation split, else None."""
  if data_config.eval_file:
    return data_lib.load_squad_json(data_config.eval_file)
  if data_config.tfds_dataset:
    return data_lib.load_tfds_squad(data_config.tfds_dataset,
                                    split="validation",
                                    data_dir=data_config.tfds_data_dir)
  return None


def total_steps(num_windows: int, train_config: config_lib.TrainConfig) -> int:
  """Steps of the whole run: all epochs, capped by max_steps."""
  steps = input_pipeline.steps_per_epoch(
      num_windows, train_config.train_batch_size) * train_config.num_train_epochs
  return min(steps, train_config.max_steps) if train_config.max_steps else steps


def train_and_evaluate(run_config: config_lib.RunConfig, model_dir: str, *,
                       verbose: str | int = "auto") -> TrainResult:
  """Trains (resuming from the latest readable checkpoint) and evaluates.

  Args:
    run_config: every setting of the run; checked against
      `model_dir/run_config.json` when resuming (see rundir.reconcile).
    model_dir: holds run_config.json, checkpoints/, logs/, train_log.jsonl,
      tokenizer/, bert_config.json and eval/.
    verbose: Keras fit verbosity (progress bar).

  Returns:
    The TrainResult.
  """
  os.makedirs(model_dir, exist_ok=True)
  run_config = rundir.reconcile(model_dir, run_config)
  configure_runtime(run_config.train)
  train = run_config.train
  squad = load_train_data(run_config.data,
                          version_2_with_negative=run_config.decode
                          .version_2_with_negative)
  source = modeling.resolve_source(run_config.model)
  tokenizer = features_lib.load_tokenizer(
      source.tokenizer_path, do_lower_case=run_config.model.do_lower_case)
  train_features = features_lib.build_features(squad.examples, tokenizer,
                                               run_config.features)
  per_epoch = input_pipeline.steps_per_epoch(len(train_features),
                                             train.train_batch_size)
  steps = total_steps(len(train_features), train)
  logging.info("%d examples -> %d windows; %d steps per epoch, %d in all.",
               len(squad.examples), len(train_features), per_epoch, steps)

  strategy = distribution.make_strategy(train.distribution_strategy,
                                        tpu=train.tpu)
  with strategy.scope():
    model, _ = modeling.build_model(source)
    optimizer = optimization.create_optimizer(
        learning_rate=train.learning_rate, total_steps=steps,
        warmup_ratio=train.warmup_ratio, weight_decay=train.weight_decay,
        clip_norm=train.clip_norm,
        mixed_float16=train.mixed_precision == "mixed_float16")
    model.compile(optimizer=optimizer, jit_compile=train.jit_compile)
    state = checkpointing.new_state(model, optimizer, seed=train.seed)
  _save_model_assets(model_dir, model, tokenizer)
  manager = checkpointing.make_manager(state, model_dir,
                                       keep=train.keep_checkpoints)
  resumed_from = checkpointing.latest_readable(model_dir)
  if resumed_from:
    checkpointing.restore(state, resumed_from)
    _check_data_position(state, per_epoch, resumed_from)
  step = int(state.step.numpy())
  _truncate_train_log(model_dir, step)

  logger = _StepLogger(model_dir, state)
  saver = _Saver(manager, state, per_epoch, before_save=logger.flush)
  callbacks = [logger, _PeriodicSave(saver, train.save_every_steps)]
  first_step, started = step, time.perf_counter()
  while step < steps:
    epoch = step // per_epoch
    stop = min((epoch + 1) * per_epoch, steps)
    dataset = input_pipeline.train_dataset(
        train_features, batch_size=train.train_batch_size, seed=train.seed,
        num_epochs=epoch + 1, max_seq_length=run_config.features.max_seq_length,
        pipeline_config=run_config.pipeline, start_step=step, stop_step=stop)
    model.fit(dataset, epochs=epoch + 1, initial_epoch=epoch,
              steps_per_epoch=stop - step, callbacks=callbacks,
              verbose=verbose)
    step = int(state.step.numpy())
    if step != stop:
      raise RuntimeError(f"Training stopped at step {step}, expected {stop}.")
    saver.save_if_new()
  saver.save_if_new()
  train_seconds = time.perf_counter() - started
  logger.close()
  metrics = _evaluate_at_end(model, tokenizer, run_config, model_dir, step,
                             manager.latest_checkpoint)
  return TrainResult(
      step, steps, resumed_from, manager.latest_checkpoint, metrics,
      steps_run=step - first_step,
      windows_run=_windows_in_steps(len(train_features), per_epoch,
                                    train.train_batch_size, first_step, step),
      train_seconds=train_seconds)


def _windows_in_steps(num_windows, per_epoch, batch_size, first, stop):
  """Windows in global steps [first, stop) (the last batch of an epoch is
  short)."""
  last_batch = num_windows - (per_epoch - 1) * batch_size
  return sum(last_batch if (s + 1) % per_epoch == 0 else batch_size
             for s in range(first, stop))


def _save_model_assets(model_dir, model, tokenizer):
  """Tokenizer and BERT config beside the checkpoints, for eval and export."""
  tokenizer_dir = os.path.join(model_dir, rundir.TOKENIZER_SUBDIR)
  if not os.path.isdir(tokenizer_dir):
    tmp = tokenizer_dir + ".tmp"
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, tokenizer_dir)
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


class _Saver:
  """Saves a checkpoint at the current step unless one exists for it."""

  def __init__(self, manager, state, per_epoch, *, before_save):
    self._manager, self._state, self._per_epoch = manager, state, per_epoch
    self._before_save = before_save
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
    checkpointing.save(self._manager, self._state)
    self._last_saved = step


class _PeriodicSave(tf_keras.callbacks.Callback):

  def __init__(self, saver, every):
    super().__init__()
    self._saver, self._every = saver, every

  def on_train_batch_end(self, batch, logs=None):
    if self._saver.step % self._every == 0:
      self._saver.save_if_new()


class _StepLogger(tf_keras.callbacks.Callback):
  """Per-step loss and LR to train_log.jsonl and TensorBoard (logs/train).

  Keras reports the mean loss since the start of the fit call, which would
  differ between a resumed and an uninterrupted run; resetting the metric
  before each batch makes the logged loss that step's own.
  """

  def __init__(self, model_dir, state):
    super().__init__()
    self._file = open(os.path.join(model_dir, rundir.TRAIN_LOG_FILE), "a",
                      encoding="utf-8")
    self._state = state
    self._writer = tf.summary.create_file_writer(
        os.path.join(model_dir, rundir.LOGS_SUBDIR, "train"))

  def on_train_batch_begin(self, batch, logs=None):
    self.model.reset_metrics()

  def on_train_batch_end(self, batch, logs=None):
    step = int(self._state.step.numpy())
    lr = optimization.current_learning_rate(self._state.optimizer)
    loss = float(logs["loss"])
    self._file.write(json.dumps({"step": step, "loss": loss,
                                 "learning_rate": lr}) + "\n")
    with self._writer.as_default(step=step):
      tf.summary.scalar("loss", loss)
      tf.summary.scalar("learning_rate", lr)

  def flush(self):
    self._file.flush()
    os.fsync(self._file.fileno())
    self._writer.flush()

  def close(self):
    self.flush()
    self._file.close()
    self._writer.close()


def read_train_log(model_dir: str) -> list[dict]:
  """The per-step log; a line cut by a kill is ignored."""
  path = os.path.join(model_dir, rundir.TRAIN_LOG_FILE)
  if not os.path.exists(path):
    return []
  entries = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        entries.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return entries


def _truncate_train_log(model_dir, step):
  """Drops entries after the restored step: those steps will run again."""
  entries = [e for e in read_train_log(model_dir) if e["step"] <= step]
  io_utils.atomic_write_text(
      os.path.join(model_dir, rundir.TRAIN_LOG_FILE),
      "".join(json.dumps(e) + "\n" for e in entries))


def _evaluate_at_end(model, tokenizer, run_config, model_dir, step,
                     checkpoint):
  eval_data = load_eval_data(run_config.data)
  if eval_data is None:
    logging.info("No eval data configured; skipping evaluation.")
    return None
  result = evaluation.evaluate(model, eval_data.examples, tokenizer,
                               run_config=run_config)
  evaluation.write_outputs(
      os.path.join(model_dir, rundir.EVAL_SUBDIR), result,
      version_2_with_negative=run_config.decode.version_2_with_negative,
      extra_results={"global_step": step, "checkpoint": checkpoint})
  logging.info("Eval at step %d: %s", step, json.dumps(result.metrics))
  return result.metrics
