"""Tests for tfqa.training.accumulation: K micro-batches make one update equal to the unsplit batch's, and each is reported."""

import json

import numpy as np
import pytest
import tf_keras

from tfqa.model import modeling
from tfqa.model import source as model_source
from tfqa.training import accumulation
from tfqa.training import optimization

from conftest import tiny_bert_config

# Two global batches of 4 windows of 8 tokens, with answer positions.
_RNG = np.random.default_rng(0)
_BATCHES = [({"input_ids": _RNG.integers(5, 60, size=[4, 8]).astype(np.int32),
              "attention_mask": np.ones([4, 8], np.int32),
              "token_type_ids": np.array([[0] * 4 + [1] * 4] * 4, np.int32)},
             {"start_positions": _RNG.integers(4, 8, size=[4]).astype(np.int32),
              "end_positions": np.full([4], 7, np.int32)})
            for _ in range(2)]


@pytest.fixture(scope="module")
def bert_config(tmp_path_factory):
  path = tmp_path_factory.mktemp("accumulation") / "bert.json"
  path.write_text(json.dumps(tiny_bert_config(
      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)))
  return str(path)


def _fit(bert_config, steps, after_micro_batch=None):
  """(weights before, weights after, per-step losses, optimizer steps) of a 2-batch fit.

  Weights are named without the model's name (which counts models built).
  """
  tf_keras.utils.set_random_seed(0)
  model, _ = modeling.build_model(
      model_source.ModelSource("bert_config", bert_config, ""), dropout=False)
  optimizer = optimization.create_optimizer(
      learning_rate=1e-2, total_steps=2, warmup_ratio=0.0, weight_decay=0.0,
      clip_norm=0.0)
  model.compile(optimizer=optimizer)
  if steps > 1:
    accumulation.install(model, steps=steps,
                         after_micro_batch=after_micro_batch)

  def weights():
    return {v.name.split("/", 1)[1]: v.numpy()
            for v in model.trainable_variables}

  before = weights()
  losses = [model.train_on_batch(x, y, return_dict=True)["loss"]
            for x, y in _BATCHES]
  return before, weights(), losses, int(optimizer.iterations.numpy())


def test_micro_batches_update_as_the_whole_batch_does(bert_config):
  before, whole, whole_losses, iterations = _fit(bert_config, 1)
  assert iterations == 2
  assert [n for n in whole if not np.array_equal(whole[n], before[n])]
  # 4 micro-batches of one window each (tfqa_train's test in
  # test_training_trainer.py runs 2 of 2).
  calls = []
  _, weights, losses, iterations = _fit(
      bert_config, 4,
      after_micro_batch=lambda step, index: calls.append((step, index)))
  # One optimizer step per global batch, whatever the micro-batch count.
  assert iterations == 2
  assert sorted(weights) == sorted(whole)
  for name, value in whole.items():
    np.testing.assert_allclose(weights[name], value, rtol=1e-4, atol=1e-5,
                               err_msg=name)
  # The logged loss is the mean of the micro-batches' mean losses.
  np.testing.assert_allclose(losses, whole_losses, rtol=1e-5)
  # Each micro-batch is reported once it has its gradients: (global step,
  # index).
  assert calls == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2),
                   (2, 3)]
