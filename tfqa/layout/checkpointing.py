"""Training state in one tf.train.Checkpoint: build, save, verify, fall back, restore strictly."""

from __future__ import annotations

import dataclasses
import json
import os
import re

from absl import logging
from google.protobuf import text_format
import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management
import tf_keras

from tfqa.layout import fs
from tfqa.layout import integrity
from tfqa.layout import rundir


class CheckpointError(ValueError):
  """No usable checkpoint, or one that does not fit the model."""


# The "{{function_node ...}} " prefix of errors raised inside tf.functions.
_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")


class CheckpointWriteError(OSError):
  """A checkpoint could not be written (full disk, read-only, permissions).

  An OSError, not the TensorFlow error: Keras takes an OutOfRangeError
  raised in a callback (what a write past a file size limit gives) for the
  end of the data and would stop training quietly.
  """


@dataclasses.dataclass
class TrainingState:
  """Everything a resumed run needs, and nothing that could drift.

  The data position is `step`: training batches are a pure function of
  (seed, step) (see input_pipeline), so the step fixes the next batch.
  """

  model: tf_keras.Model
  optimizer: tf_keras.optimizers.Optimizer
  # Completed epochs; checked against step on restore.
  epoch: tf.Variable
  # The run's own generator (for anything random outside the model).
  rng: tf.random.Generator
  # One generator per dropout layer; Keras does not checkpoint them.
  dropout_rngs: tuple[tf.random.Generator, ...]
  # JSON of the model's (weight name, shape) list, to explain mismatches.
  model_signature: tf.Variable

  @property
  def step(self) -> tf.Variable:
    """The global step: the optimizer's iteration count (drives the LR)."""
    return _inner_optimizer(self.optimizer).iterations

  def checkpoint(self) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(
        model=self.model, optimizer=self.optimizer, epoch=self.epoch,
        rng=self.rng, dropout_rngs=list(self.dropout_rngs),
        model_signature=self.model_signature)


def _inner_optimizer(optimizer):
  return getattr(optimizer, "inner_optimizer", optimizer)


def dropout_generators(model) -> tuple[tf.random.Generator, ...]:
  """The tf.random.Generator of every built random layer (e.g. Dropout).

  They exist only when `tf_keras.backend.experimental.
  enable_tf_random_generator()` was on when the model was created and the
  model has been called once.

  Raises:
    ValueError: a random layer has no generator (that setting was off), so
      its dropout could not be resumed exactly.
  """
  generators = []
  for layer in model.submodules:
    random_generator = getattr(layer, "_random_generator", None)
    if random_generator is None:
      continue
    generator = getattr(random_generator, "_generator", None)
    if not isinstance(generator, tf.random.Generator):
      raise ValueError(
          f"Layer {layer.name!r} draws random numbers without a "
          f"tf.random.Generator; its dropout masks cannot be checkpointed. "
          f"Call tf_keras.backend.experimental.enable_tf_random_generator() "
          f"before building the model, and call the model once.")
    generators.append(generator)
  return tuple(generators)


def model_signature(model) -> str:
  """JSON list of [weight name without the model prefix, shape]."""
  return json.dumps([[w.name.split("/", 1)[-1], w.shape.as_list()]
                     for w in model.weights])


def new_state(model, optimizer, *, seed: int,
              strategy: tf.distribute.Strategy | None = None) -> TrainingState:
  """Fresh training state around a built model and its optimizer.

  Call it outside `strategy.scope()`: the optimizer's slots are made inside
  it (mirrored like the weights), the bookkeeping variables outside (a
  string variable cannot be broadcast between workers, and they need no
  syncing: every worker computes the same values).
  """
  strategy = strategy or tf.distribute.get_strategy()
  with strategy.scope():
    # Create the slots now so a restore fills them at once rather than on
    # first use (a deferred restore would hide a corrupt slot tensor).
    _inner_optimizer(optimizer).build(model.trainable_variables)
  return TrainingState(
      model=model, optimizer=optimizer,
      epoch=tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"),
      rng=tf.random.Generator.from_seed(seed),
      dropout_rngs=dropout_generators(model),
      model_signature=tf.Variable(model_signature(model), trainable=False,
                                  name="model_signature"))


def checkpoint_dir(model_dir: str) -> str:
  return os.path.join(model_dir, rundir.CHECKPOINT_SUBDIR)


def make_manager(state: TrainingState, model_dir: str, *,
                 keep: int) -> tf.train.CheckpointManager:
  """A CheckpointManager over model_dir/checkpoints (state file repaired)."""
  _repair_state_file(checkpoint_dir(model_dir))
  return tf.train.CheckpointManager(
      state.checkpoint(), checkpoint_dir(model_dir), max_to_keep=keep,
      checkpoint_name=rundir.CHECKPOINT_NAME)


def _repair_state_file(directory):
  """Rewrites a damaged `checkpoint` state file from the files on disk.

  TensorFlow's manager ignores a state file it cannot parse (and then never
  deletes the checkpoints it listed) and crashes on one that is not UTF-8;
  rebuilding it from the checkpoints on disk avoids both.
  """
  path = os.path.join(directory, "checkpoint")
  if not fs.exists(path):
    return
  try:
    if tf.train.get_checkpoint_state(directory) is not None:
      return
  except Exception:  # pylint: disable=broad-except
    pass  # e.g. UnicodeDecodeError
  prefixes = sorted(_on_disk(directory), key=rundir.checkpoint_step)
  logging.warning("Rebuilding the damaged checkpoint state file %s from the "
                  "checkpoints on disk: %s", path,
                  [os.path.basename(p) for p in prefixes])
  if not prefixes:
    fs.remove(path)
    return
  # With their times, the manager rotates (deletes) them as usual.
  checkpoint_management.update_checkpoint_state_internal(
      directory, prefixes[-1], all_model_checkpoint_paths=prefixes,
      all_model_checkpoint_timestamps=[
          fs.getmtime(p + ".index") for p in prefixes],
      last_preserved_timestamp=0.0, save_relative_paths=True)


def _on_disk(directory):
  return [p[:-len(".index")] for p in
          fs.glob(directory, rundir.CHECKPOINT_NAME + "-*.index")]


def save(manager: tf.train.CheckpointManager, state: TrainingState) -> str:
  """Saves a checkpoint numbered by the global step.

  TensorFlow writes the data and index files before it updates the
  `checkpoint` state file (atomically), so a run killed mid-save still
  resumes from the previous checkpoint.
  """
  step = int(state.step.numpy())
  try:
    path = manager.save(checkpoint_number=step)
  except (OSError, tf.errors.OpError) as e:
    # What TensorFlow staged for this checkpoint is useless; remove it if
    # the file system lets us.
    fs.rmtree(os.path.join(manager.directory,
                           f"{rundir.CHECKPOINT_NAME}-{step}_temp"))
    raise CheckpointWriteError(
        f"Could not write checkpoint {rundir.CHECKPOINT_NAME}-{step} to "
        f"{manager.directory}: {type(e).__name__}: "
        f"{_FUNCTION_NODE.sub('', _first_line(e))}. The "
        f"checkpoints written before it are untouched (newest: "
        f"{manager.latest_checkpoint or 'none'}). Free disk space or make "
        f"the directory writable, then re-run the same command to resume "
        f"from there.") from None
  logging.info("Saved checkpoint %s", path)
  return path


def candidate_checkpoints(model_dir: str) -> list[str]:
  """Checkpoint prefixes, newest first: the state file's, then any on disk.

  A relative `model_dir` gives prefixes relative to the working directory,
  as an absolute one gives absolute ones: each prefix is `model_dir`'s
  checkpoints directory joined once with the name the state file records.

  Raises:
    CheckpointError: the `checkpoint` state file names a checkpoint outside
      the checkpoints directory (tfqa would read it, and the checkpoint
      manager would delete it when rotating).
  """
  directory = checkpoint_dir(model_dir)
  state_file = os.path.join(directory, "checkpoint")
  try:
    recorded = _recorded_prefixes(state_file)
  except Exception as e:  # pylint: disable=broad-except
    # A damaged state file must not hide the checkpoints next to it.
    logging.warning("Unreadable checkpoint state file in %s (%s); looking "
                    "for checkpoint files directly.", directory, e)
    recorded = []
  for prefix in recorded:
    try:
      integrity.contained_path(directory, prefix, source=state_file)
    except integrity.PathEscapeError as e:
      raise CheckpointError(str(e)) from None
  prefixes = [_joined(p, directory) for p in recorded]
  prefixes += [p for p in _on_disk(directory) if p not in prefixes]
  return sorted(set(prefixes), key=rundir.checkpoint_step, reverse=True)


def _recorded_prefixes(state_file):
  """The prefixes the state file lists, as written (relative or absolute).

  Not `tf.train.get_checkpoint_state`: it already joins relative entries
  with the directory it is given, and the containment check must see what
  the file says.

  Raises:
    ValueError, text_format.ParseError, UnicodeDecodeError, tf.errors.OpError:
      the file is damaged.
  """
  if not fs.exists(state_file):
    return []
  text = fs.read_text(state_file)
  state = checkpoint_management.CheckpointState()
  text_format.Merge(text, state)
  if not state.model_checkpoint_path:
    raise ValueError("it names no model_checkpoint_path")
  return list(dict.fromkeys(
      p for p in (state.model_checkpoint_path,
                  *state.all_model_checkpoint_paths) if p))


def _joined(prefix, directory):
  if os.path.isabs(prefix) or fs.is_url(prefix):
    return prefix
  return os.path.join(directory, prefix)


def verify_readable(prefix: str) -> None:
  """Reads every tensor of a checkpoint so corruption shows now, not later.

  TensorFlow checks a tensor's checksum only when it is read, and restores
  some values lazily, so a damaged file can pass `restore()` and fail
  mid-training.

  Raises:
    CheckpointError: naming the checkpoint and what failed.
  """
  try:
    reader = _reader(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except Exception as e:  # pylint: disable=broad-except
    # Damage surfaces as OpError, DataLossError, IndexError ("Read less
    # bytes than requested") and more; any of them means "unusable".
    raise CheckpointError(f"Checkpoint {prefix} is unreadable: "
                          f"{type(e).__name__}: {_first_line(e)}") from None


def _reader(prefix):
  """A reader of checkpoint `prefix`. Not tf.train.load_checkpoint: it takes
  a prefix that ram:// calls a directory (any prefix of a name) for one."""
  return tf.compat.v1.train.NewCheckpointReader(prefix)


def _first_line(error):
  return str(error).strip().splitlines()[0] if str(error).strip() else ""


def latest_readable(model_dir: str) -> str | None:
  """Newest checkpoint whose every tensor reads back; None if there is none.

  Raises:
    CheckpointError: checkpoints exist but none is readable.
  """
  candidates = candidate_checkpoints(model_dir)
  bad = []
  for prefix in candidates:
    try:
      verify_readable(prefix)
    except CheckpointError as e:
      bad.append(str(e))
      logging.warning("Skipping damaged checkpoint: %s", e)
      continue
    if bad:
      logging.warning("Falling back to checkpoint %s (newer ones are "
                      "damaged: %s)", prefix, "; ".join(bad))
    return prefix
  if bad:
    raise CheckpointError(
        f"No readable checkpoint in {checkpoint_dir(model_dir)}: "
        + "; ".join(bad) + ". Delete the directory to start over, or restore "
        "it from a backup.")
  return None


def restore(state: TrainingState, prefix: str) -> None:
  """Restores every object of `state` from `prefix`, strictly.

  Raises:
    CheckpointError: the checkpoint was written for a model of another
      architecture (the mismatched weights and shapes are listed) or does not
      hold every object of the state.
  """
  _check_same_architecture(state, prefix)
  try:
    status = state.checkpoint().restore(prefix)
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise CheckpointError(f"Checkpoint {prefix} does not match the training "
                          f"state: {_first_line(e)}") from None
  logging.info("Restored %s (step %d, epoch %d)", prefix,
               int(state.step.numpy()), int(state.epoch.numpy()))


_SIGNATURE_KEY = "model_signature/.ATTRIBUTES/VARIABLE_VALUE"


def _saved_signature(prefix):
  reader = _reader(prefix)
  if not reader.has_tensor(_SIGNATURE_KEY):
    raise CheckpointError(f"Checkpoint {prefix} was not written by tfqa (it "
                          f"has no model signature).")
  return json.loads(reader.get_tensor(_SIGNATURE_KEY).decode())


def _check_same_architecture(state, prefix):
  _compare_signatures(prefix, _saved_signature(prefix),
                      json.loads(model_signature(state.model)))


def _compare_signatures(prefix, saved, current):
  saved = dict(map(_tuple_key, saved))
  current = dict(map(_tuple_key, current))
  problems = []
  for name in sorted(set(saved) | set(current)):
    if saved.get(name) != current.get(name):
      problems.append(f"{name}: checkpoint {saved.get(name, 'absent')}, "
                      f"model {current.get(name, 'absent')}")
  if problems:
    shown = "\n  ".join(problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    raise CheckpointError(
        f"Checkpoint {prefix} was written for a different architecture; "
        f"{len(problems)} weight(s) differ:\n  {shown}{more}\nUse the model "
        f"config the run was started with (see run_config.json).")


def _tuple_key(entry):
  name, shape = entry
  return name, tuple(shape)


def restore_model(model, prefix: str) -> None:
  """Restores only the model weights of a training checkpoint, strictly.

  Raises:
    CheckpointError: architecture mismatch or weights missing.
  """
  _compare_signatures(prefix, _saved_signature(prefix),
                      json.loads(model_signature(model)))
  try:
    status = tf.train.Checkpoint(model=model).restore(prefix)
    status.expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise CheckpointError(f"Checkpoint {prefix} does not fit the model: "
                          f"{_first_line(e)}") from None
