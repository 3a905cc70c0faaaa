"""Tests for tfqa.training.inputs: the run's examples checked against its version, step counts, micro-batch shares."""

import pytest

from tfqa import config
from tfqa.training import inputs


def test_v11_run_refuses_unanswerable_training_questions(tiny_files):
  with pytest.raises(ValueError, match=(
      r"has 3 unanswerable questions but the run is SQuAD v1.1-style. Pass "
      r"version_2_with_negative=True to learn no-answer predictions, or "
      r"answerable_only=True to drop them.$")) as caught:
    inputs.load_train_data(
        config.DataConfig(train_file=tiny_files["train_v2"]),
        version_2_with_negative=False)
  assert caught.value.worded({
      "version_2_with_negative": "--version_2_with_negative",
      "answerable_only": "--answerable_only"}).endswith(
          "Pass --version_2_with_negative to learn no-answer predictions, or "
          "--answerable_only to drop them.")
  squad = inputs.load_train_data(
      config.DataConfig(train_file=tiny_files["train_v2"],
                        answerable_only=True), version_2_with_negative=False)
  assert len(squad.examples) == 8


def test_no_training_data_is_a_clear_error():
  with pytest.raises(ValueError, match=(
      r"^No training data: pass train_file \(SQuAD JSON\) or tfds_dataset ")):
    inputs.load_train_data(config.DataConfig(),
                               version_2_with_negative=False)


@pytest.mark.parametrize("max_steps, expected", [(0, 12), (10, 10), (50, 12)])
def test_total_steps_covers_every_epoch_capped_by_max_steps(max_steps,
                                                            expected):
  # 14 windows, batch 4: 4 steps per epoch (the last one partial), 3 epochs.
  train = config.TrainConfig(train_batch_size=4, num_train_epochs=3,
                             max_steps=max_steps)
  assert inputs.total_steps(14, train) == expected


def test_micro_batches_must_split_evenly_over_replicas():
  train = config.TrainConfig(train_batch_size=4,
                             gradient_accumulation_steps=2)
  inputs.check_micro_batches(train, 2)
  with pytest.raises(ValueError, match=(
      r"train_batch_size=4 with gradient_accumulation_steps=2 on 4 replicas\."
      r" Expected a multiple of replicas x gradient_accumulation_steps = 8")):
    inputs.check_micro_batches(train, 4)


def test_micro_batch_note_spells_the_split():
  assert inputs.micro_batch_note(config.TrainConfig(train_batch_size=8),
                                     2) == ""
  train = config.TrainConfig(train_batch_size=8,
                             gradient_accumulation_steps=2)
  assert inputs.micro_batch_note(train, 2) == (
      " = 2 micro-batches x 2 windows x 2 replica(s)")
