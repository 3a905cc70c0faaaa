"""A run's training state: the compiled model and optimizer, restored or warm-started, and how it is saved."""

from __future__ import annotations

import os
from typing import Callable

from absl import logging

from tfqa import config as config_lib
from tfqa import errors
from tfqa.layout import checkpointing
from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.layout import rundir
from tfqa.model import modeling
from tfqa.model import source as model_source
from tfqa.training import accumulation
from tfqa.training import optimization


class RunCheckpointError(checkpointing.CheckpointError,
                         errors.ArgumentNamingError):
  """A checkpoint this run cannot start from, naming the arguments to
  change (a template, as errors.ArgumentNamingError's)."""


def _init_checkpoint_error(init_checkpoint, problem, names=()):
  """'{init_checkpoint}=PATH PROBLEM' (`problem` a template naming `names`)."""
  return RunCheckpointError(
      "{init_checkpoint}=" + errors.literal(init_checkpoint) + problem,
      ["init_checkpoint", *names])


def build_state(strategy, source: model_source.ModelSource,
                train: config_lib.TrainConfig, steps: int, *,
                loss_scaling: bool, after_micro_batch=None,
                log_weights: bool = True) -> checkpointing.TrainingState:
  """A fresh state under `strategy`: the model compiled with its optimizer
  (`log_weights`: log which weights the model was built with)."""
  with strategy.scope():
    model, report = modeling.build_model(source)
    if log_weights:
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
      raise _init_checkpoint_error(init_checkpoint, errors.literal(
          " holds no checkpoint; expected a tfqa_train --model_dir that has "
          "trained, or a checkpoint prefix."))
  try:
    checkpointing.verify_readable(prefix)
    loaded, _ = modeling.build_model(source, dropout=False)
    checkpointing.restore_model(loaded, prefix)
  except checkpointing.CheckpointError as e:
    raise _init_checkpoint_error(init_checkpoint, errors.literal(
        f": {e}").replace(
            "Use the model config the run was started with (see "
            "run_config.json).",
            "Expected a checkpoint of the architecture this run builds: "
            "pass the {model} or {bert_config_file} that run used."),
        ["model", "bert_config_file"]) from None
  for weight, value in zip(state.model.weights, loaded.weights):
    weight.assign(value)
  logging.info("Warm start: model weights from %s; the optimizer, step (0) "
               "and LR schedule start fresh (this is a new run, not a "
               "resume).", prefix)
  return prefix


def check_data_position(state: checkpointing.TrainingState, per_epoch: int,
                        prefix: str) -> None:
  """Raises CheckpointError when a restored step lies in another epoch now."""
  step, epoch = int(state.step.numpy()), int(state.epoch.numpy())
  if epoch != step // per_epoch:
    raise RunCheckpointError(errors.literal(
        f"Checkpoint {prefix} is at step {step} of epoch {epoch}, but the "
        f"training data now has {per_epoch} steps per epoch (step {step} "
        f"would be epoch {step // per_epoch}). The training data or batch "
        f"size changed since the run started; use a new ") + "{model_dir}.",
                             ["model_dir"])


def checkpoint_writer(
    state: checkpointing.TrainingState, model_dir: str,
    train: config_lib.TrainConfig,
    chief: bool) -> tuple[Callable[[], None], Callable[[], None]]:
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


def save_model_assets(model_dir: str, model, tokenizer) -> None:
  """Tokenizer and BERT config beside the checkpoints, for eval and export."""
  tokenizer_dir = os.path.join(model_dir, rundir.TOKENIZER_SUBDIR)
  if not fs.isdir(tokenizer_dir):
    tmp = tokenizer_dir + ".tmp"
    fs.rmtree(tmp)  # a copy a killed run left
    with fs.local_dir_for(tmp) as local:  # HF writes local files only
      tokenizer.save_pretrained(local)
    fs.rename(tmp, tokenizer_dir)
  json_files.atomic_write_json(os.path.join(model_dir, rundir.BERT_CONFIG_FILE),
                             modeling.bert_config_dict(model))
