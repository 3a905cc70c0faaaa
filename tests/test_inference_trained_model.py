"""Tests for tfqa.inference.trained_model: a run directory loads as its model (no dropout, checkpoint weights), tokenizer and config."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfqa.inference import trained_model
from tfqa.layout import rundir

from conftest import tiny_export, tiny_vocab


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_files):
  return tiny_export(tmp_path_factory, tiny_files)[0]


def _checkpoints(model_dir):
  return sorted(name[:-len(".index")] for name in os.listdir(
      os.path.join(model_dir, "checkpoints")) if name.endswith(".index"))


def test_a_run_loads_with_its_newest_checkpoint(model_dir):
  trained = trained_model.load(model_dir)
  # One epoch of the tiny data: 4 steps, saved at the epoch's end.
  assert _checkpoints(model_dir) == ["ckpt-4"]
  assert trained.checkpoint == os.path.join(model_dir, "checkpoints", "ckpt-4")
  assert trained.model_dir == model_dir
  assert trained.run_config == rundir.read_run_config(model_dir)
  assert trained.model.config.hidden_dropout_prob == 0.0
  assert trained.model.config.attention_probs_dropout_prob == 0.0
  assert trained.tokenizer("paris is")["input_ids"] == [
      2, tiny_vocab().index("paris"), tiny_vocab().index("is"), 3]
  # The weights are the checkpoint's.
  reader = tf.train.load_checkpoint(trained.checkpoint)
  np.testing.assert_array_equal(
      reader.get_tensor("model/bert/embeddings/weight/.ATTRIBUTES/"
                        "VARIABLE_VALUE"),
      trained.model.bert.embeddings.weight.numpy())


def test_a_named_checkpoint_must_belong_to_the_run(model_dir, tmp_path):
  with pytest.raises(ValueError, match=r"ckpt-99"):
    trained_model.load(model_dir, checkpoint=os.path.join(
        model_dir, "checkpoints", "ckpt-99"))


def test_a_directory_that_is_not_a_run_is_refused(model_dir, tmp_path):
  with pytest.raises(ValueError, match=(
      rf"^{tmp_path} has no run_config.json: it is not a tfqa_train "
      rf"--model_dir\.$")):
    trained_model.load(str(tmp_path))
  partial = tmp_path / "partial"
  partial.mkdir()
  shutil.copy(os.path.join(model_dir, "run_config.json"), partial)
  with pytest.raises(ValueError, match=(
      rf"^{partial} lacks bert_config.json; was training started in it\?$")):
    trained_model.load(str(partial))
  shutil.copy(os.path.join(model_dir, "bert_config.json"), partial)
  shutil.copytree(os.path.join(model_dir, "tokenizer"), partial / "tokenizer")
  with pytest.raises(ValueError, match=rf"^{partial} has no checkpoint yet\.$"):
    trained_model.load(str(partial))
