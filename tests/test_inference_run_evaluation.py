"""Tests for tfqa.inference.run_evaluation: scoring, official output files."""

import json
import os

import pytest

from tfqa import config
from tfqa.data import squad as data
from tfqa.data import windows as windows_lib
from tfqa.evaluation import decoding
from tfqa.inference import batching
from tfqa.inference import run_evaluation

from conftest import tiny_squad


@pytest.fixture
def squad():
  return data.parse_squad(tiny_squad(True))


def test_score_uses_v2_metrics_with_null_odds(squad):
  preds = decoding.Predictions({
      e.id: decoding.ExamplePrediction(
          e.answer_texts[0] if e.answer_texts else "", -1, -1, 0.0,
          -1.0 if e.answer_texts else 1.0, ()) for e in squad.examples})
  v2 = run_evaluation.score(squad.examples, preds,
                        config.DecodeConfig(version_2_with_negative=True))
  assert v2["exact"] == 100.0 and v2["best_exact"] == 100.0
  v1_examples = [e for e in squad.examples if not e.is_impossible]
  v1 = run_evaluation.score(v1_examples, preds, config.DecodeConfig())
  assert v1 == {"exact_match": 100.0, "f1": 100.0, "total": 8, "missing": 0}


def test_write_outputs_writes_official_files(tmp_path):
  candidate = decoding.Candidate("paris", 0, 5, 2.0, 1.5, 0.75)
  preds = decoding.Predictions({
      "q1": decoding.ExamplePrediction("paris", 0, 5, 3.5, -2.0, (candidate,)),
      "q2": decoding.ExamplePrediction("", -1, -1, 1.0, 4.0, ())})
  result = run_evaluation.EvalResult(preds, {"exact": 50.0})
  paths = run_evaluation.write_outputs(str(tmp_path / "out"), result,
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
  v1_paths = run_evaluation.write_outputs(str(tmp_path / "v1"), result,
                                      version_2_with_negative=False)
  assert "null_odds.json" not in [os.path.basename(p) for p in v1_paths]


def test_evaluate_run_without_eval_file_is_an_error(tmp_path):
  with pytest.raises(ValueError, match=(
      rf"^model_dir={tmp_path} holds no run_config\.json; expected a "
      rf"tfqa_train --model_dir\.$")):
    run_evaluation.evaluate_run(str(tmp_path))


def test_computed_tokens_are_those_of_the_evaluation_batches(tokenizer):
  squad = data.parse_squad(tiny_squad(True))
  features = config.FeatureConfig(max_seq_length=32, doc_stride=8,
                                  max_query_length=12)
  run_config = config.RunConfig(
      model=config.ModelConfig(model="m"),
      data=config.DataConfig(train_file="t.json"), features=features,
      pipeline=config.PipelineConfig(pad_to_multiple_of=8),
      train=config.TrainConfig(eval_batch_size=3))
  windows = windows_lib.build_features(squad.examples, tokenizer, features)
  assert run_evaluation.computed_tokens(
      squad.examples, tokenizer, run_config=run_config) == sum(
          b["input_ids"].size for b in batching.length_sorted_batches(
              windows, batch_size=3, max_seq_length=32,
              pipeline_config=run_config.pipeline))
  # Fewer examples, fewer tokens.
  assert 0 < run_evaluation.computed_tokens(
      squad.examples[:1], tokenizer, run_config=run_config) < (
          run_evaluation.computed_tokens(squad.examples, tokenizer,
                                         run_config=run_config))
