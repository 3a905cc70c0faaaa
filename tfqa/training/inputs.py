"""A run's training data: examples checked against the run, windows, and the step count they give."""

from __future__ import annotations

import dataclasses

from tfqa import config as config_lib
from tfqa import errors
from tfqa.data import pipeline
from tfqa.data import squad as squad_lib
from tfqa.data import windows as windows_lib
from tfqa.model import source as model_source


@dataclasses.dataclass(frozen=True)
class TrainingData:
  """The windows a run trains on, and what made them."""

  num_examples: int
  source: model_source.ModelSource
  tokenizer: object
  features: windows_lib.Features


def load_train_data(data_config: config_lib.DataConfig, *,
                    version_2_with_negative: bool) -> squad_lib.SquadData:
  """Training examples from the file or TFDS, checked against the version.

  Raises:
    ValueError: no training data configured, or unanswerable questions in a
      v1.1 run.
  """
  if data_config.train_file:
    squad = squad_lib.load_squad_json(data_config.train_file)
    source = data_config.train_file
  elif data_config.tfds_dataset:
    squad = squad_lib.load_tfds_squad(data_config.tfds_dataset, split="train",
                                     data_dir=data_config.tfds_data_dir)
    source = data_config.tfds_dataset
  else:
    raise errors.ArgumentNamingError(
        "No training data: pass {train_file} (SQuAD JSON) or {tfds_dataset} "
        "(squad/v1.1 or squad/v2.0).", ["train_file", "tfds_dataset"])
  if data_config.answerable_only:
    squad = squad_lib.answerable_only(squad)
  if squad.has_impossible and not version_2_with_negative:
    impossible = sum(e.is_impossible for e in squad.examples)
    raise errors.ArgumentNamingError(
        errors.literal(f"{source} has {impossible} unanswerable questions "
                       f"but the run is SQuAD v1.1-style. ") +
        "Pass {version_2_with_negative:true} to learn no-answer "
        "predictions, or {answerable_only:true} to drop them.",
        ["version_2_with_negative", "answerable_only"])
  if not squad.examples:
    raise ValueError(f"{source} holds no usable training examples.")
  return squad


def prepare_data(run_config: config_lib.RunConfig,
                 source: model_source.ModelSource) -> TrainingData:
  """The run's training examples, tokenized into windows."""
  squad = load_train_data(run_config.data,
                          version_2_with_negative=run_config.decode
                          .version_2_with_negative)
  tokenizer = windows_lib.load_tokenizer(
      source.tokenizer_path, do_lower_case=run_config.model.do_lower_case)
  features = windows_lib.build_features(squad.examples, tokenizer,
                                         run_config.features)
  return TrainingData(len(squad.examples), source, tokenizer, features)


def total_steps(num_windows: int, train_config: config_lib.TrainConfig) -> int:
  """Steps of the whole run: all epochs, capped by max_steps."""
  steps = pipeline.steps_per_epoch(
      num_windows, train_config.train_batch_size) * train_config.num_train_epochs
  return min(steps, train_config.max_steps) if train_config.max_steps else steps


def check_micro_batches(train: config_lib.TrainConfig, replicas: int) -> None:
  """Raises ValueError unless every replica gets an equal micro-batch share."""
  micro = train.train_batch_size // train.gradient_accumulation_steps
  if train.gradient_accumulation_steps > 1 and micro % replicas:
    raise errors.ArgumentError(
        "train_batch_size", train.train_batch_size,
        others=[("gradient_accumulation_steps",
                 train.gradient_accumulation_steps)],
        note=f" on {replicas} replicas", expected=
        f"Expected a multiple of replicas x "
        f"gradient_accumulation_steps = "
        f"{replicas * train.gradient_accumulation_steps} (each replica "
        f"takes an equal share of every micro-batch).")


def micro_batch_note(train: config_lib.TrainConfig, replicas: int) -> str:
  """How the global batch splits into micro-batches, for the start line."""
  k = train.gradient_accumulation_steps
  if k == 1:
    return ""
  return (f" = {k} micro-batches x {train.train_batch_size // k // replicas} "
          f"windows x {replicas} replica(s)")
