"""Tests for tfqa.evaluation: window logits in window order, scoring, official output files."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfqa import answers
from tfqa import config
from tfqa import data
from tfqa import evaluation
from tfqa import features as features_lib

from conftest import tiny_squad


class _PositionModel(tf.Module):
  """Start logit = token id, end logit = -position: fully predictable."""

  def __call__(self, inputs, training=False):
    del training
    ids = tf.cast(inputs["input_ids"], tf.float32)
    positions = tf.cast(tf.range(tf.shape(ids)[1]), tf.float32)
    end = -tf.broadcast_to(positions, tf.shape(ids))

    class Out:
      start_logits = ids
      end_logits = end
    return Out


@pytest.fixture
def squad():
  return data.parse_squad(tiny_squad(True))


def test_model_logits_are_unpadded_and_in_window_order(squad, tokenizer):
  feats = features_lib.build_features(
      squad.examples, tokenizer,
      config.FeatureConfig(max_seq_length=32, doc_stride=8,
                           max_query_length=12))
  starts, ends = evaluation.model_logits(
      _PositionModel(), feats, batch_size=3, max_seq_length=32,
      pipeline_config=config.PipelineConfig(pad_to_multiple_of=8))
  assert len(starts) == len(feats) == len(ends)
  for window in range(len(feats)):
    assert starts[window].tolist() == feats.input_ids[window].tolist()
    assert ends[window].tolist() == [-float(i) for i in
                                     range(len(feats.input_ids[window]))]


class _CountingPositionModel(_PositionModel):
  """_PositionModel that counts its Python calls (one per trace)."""

  def __init__(self):
    super().__init__()
    self.traces = 0

  def __call__(self, inputs, training=False):
    self.traces += 1
    return super().__call__(inputs, training=training)


def test_model_logits_trace_the_model_once_across_calls(squad, tokenizer):
  model = _CountingPositionModel()
  for max_seq_length in (32, 48):  # other windows, other padded widths
    feats = features_lib.build_features(
        squad.examples, tokenizer,
        config.FeatureConfig(max_seq_length=max_seq_length, doc_stride=8,
                             max_query_length=12))
    starts, _ = evaluation.model_logits(
        model, feats, batch_size=3, max_seq_length=max_seq_length,
        pipeline_config=config.PipelineConfig(pad_to_multiple_of=8))
    assert [s.tolist() for s in starts] == [
        ids.tolist() for ids in feats.input_ids]
  assert model.traces == 1


def test_score_uses_v2_metrics_with_null_odds(squad):
  preds = answers.Predictions({
      e.id: answers.ExamplePrediction(
          e.answer_texts[0] if e.answer_texts else "", -1, -1, 0.0,
          -1.0 if e.answer_texts else 1.0, ()) for e in squad.examples})
  v2 = evaluation.score(squad.examples, preds,
                        config.DecodeConfig(version_2_with_negative=True))
  assert v2["exact"] == 100.0 and v2["best_exact"] == 100.0
  v1_examples = [e for e in squad.examples if not e.is_impossible]
  v1 = evaluation.score(v1_examples, preds, config.DecodeConfig())
  assert v1 == {"exact_match": 100.0, "f1": 100.0, "total": 8, "missing": 0}


def test_write_outputs_writes_official_files(tmp_path):
  candidate = answers.Candidate("paris", 0, 5, 2.0, 1.5, 0.75)
  preds = answers.Predictions({
      "q1": answers.ExamplePrediction("paris", 0, 5, 3.5, -2.0, (candidate,)),
      "q2": answers.ExamplePrediction("", -1, -1, 1.0, 4.0, ())})
  result = evaluation.EvalResult(preds, {"exact": 50.0})
  paths = evaluation.write_outputs(str(tmp_path / "out"), result,
                                   version_2_with_negative=True,
                                   extra_results={"global_step": 9})
  assert sorted(os.path.basename(p) for p in paths) == [
      "eval_results.json", "nbest_predictions.json", "null_odds.json",
      "predictions.json"]
  load = lambda name: json.load(open(tmp_path / "out" / name))
  assert load("predictions.json") == {"q1": "paris", "q2": ""}
  assert load("null_odds.json") == {"q1": -2.0, "q2": 4.0}
  assert load("eval_results.json") == {"exact": 50.0, "global_step": 9}
  assert load("nbest_predictions.json")["q1"] == [
      {"text": "paris", "start_char": 0, "end_char": 5, "start_logit": 2.0,
       "end_logit": 1.5, "probability": 0.75}]
  v1_paths = evaluation.write_outputs(str(tmp_path / "v1"), result,
                                      version_2_with_negative=False)
  assert "null_odds.json" not in [os.path.basename(p) for p in v1_paths]


def test_evaluate_run_without_eval_file_is_an_error(tmp_path):
  with pytest.raises(ValueError, match=(
      rf"^--model_dir={tmp_path} holds no run_config\.json; expected a "
      rf"tfqa_train --model_dir\.$")):
    evaluation.evaluate_run(str(tmp_path))
