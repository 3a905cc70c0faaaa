"""Tests for tfqa.export.card: which recorded evaluation describes an exported checkpoint."""

import json
import os

import huggingface_hub
import pytest

import tfqa
from tfqa import config
from tfqa.export import card
from tfqa.inference import trained_model


def _write_results(model_dir, subdir, **results):
  directory = os.path.join(model_dir, "eval", subdir)
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, "eval_results.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(results, f)
  return path


@pytest.fixture
def model_dir(tmp_path):
  """A run evaluated at steps 4 and 8 during training, 12 at the end, and
  checkpoint 8 by tfqa_eval on another file."""
  run = str(tmp_path / "run")
  _write_results(run, "", f1=50.0, global_step=12,
                 checkpoint=os.path.join(run, "checkpoints", "ckpt-12"))
  _write_results(run, "step-4", f1=20.0, global_step=4)
  _write_results(run, "step-8", f1=60.0, global_step=8)
  _write_results(run, "ckpt-8", f1=61.0, eval_file="other.json",
                 checkpoint=os.path.join(run, "checkpoints", "ckpt-8"))
  return run


@pytest.mark.parametrize("checkpoint,subdir,when", [
    ("checkpoints/ckpt-12", "", "at the end of training"),
    ("best/ckpt-4", "step-4", "during training"),
    ("checkpoints/ckpt-4", "step-4", "during training"),
    # Training's own evaluation of step 8 comes before tfqa_eval's.
    ("best/ckpt-8", "step-8", "during training"),
])
def test_the_exported_steps_results_are_found(model_dir, checkpoint, subdir,
                                              when):
  path = os.path.join(model_dir, "eval", subdir, "eval_results.json")
  with open(path, encoding="utf-8") as f:
    results = json.load(f)
  assert card.evaluation_of(model_dir, os.path.join(model_dir, checkpoint)
                            ) == (path, when, results)


def test_tfqa_eval_results_are_used_when_training_recorded_none(model_dir):
  os.remove(os.path.join(model_dir, "eval", "step-8", "eval_results.json"))
  assert card.evaluation_of(
      model_dir, os.path.join(model_dir, "checkpoints", "ckpt-8")) == (
          os.path.join(model_dir, "eval", "ckpt-8", "eval_results.json"),
          "by tfqa_eval",
          {"f1": 61.0, "eval_file": "other.json",
           "checkpoint": os.path.join(model_dir, "checkpoints", "ckpt-8")})


def test_results_of_another_step_never_describe_a_checkpoint(model_dir):
  assert card.evaluation_of(
      model_dir, os.path.join(model_dir, "checkpoints", "ckpt-6")) is None
  # Not the end-of-training results either, though that file exists.
  os.remove(os.path.join(model_dir, "eval", "step-4", "eval_results.json"))
  assert card.evaluation_of(
      model_dir, os.path.join(model_dir, "best", "ckpt-4")) is None


# model_card


def _trained(model_dir, *, model="bert-base-uncased", bert_config_file=None,
             train_file=None, eval_file=None, tfds_dataset="squad/v2.0",
             version_2=True):
  """A TrainedModel of a run in `model_dir` (no weights: the card reads none)."""
  run_config = config.RunConfig(
      model=config.ModelConfig(model=model, bert_config_file=bert_config_file,
                               vocab_file=("vocab.txt" if bert_config_file
                                           else None)),
      data=config.DataConfig(train_file=train_file, eval_file=eval_file,
                             tfds_dataset=tfds_dataset),
      decode=config.DecodeConfig(version_2_with_negative=version_2))
  return trained_model.TrainedModel(
      model=None, tokenizer=None, run_config=run_config,
      checkpoint=os.path.join(model_dir, "checkpoints", "ckpt-12"),
      model_dir=model_dir)


_VERIFICATION = {"probe_source": "/home/someone/data/dev-v2.0.json",
                 "probe_questions": 11,
                 "logits_max_abs_diff": {"checkpoint_vs_saved_model": 1e-6},
                 "answer_agreement": 1.0}


def _metadata(text):
  return huggingface_hub.ModelCard(text).data


def test_card_metadata_has_the_hub_fields_and_the_model_index(model_dir):
  text = card.model_card(_trained(model_dir), model_name="squad-qa",
                         version=3, verification=_VERIFICATION)
  data = _metadata(text)
  assert data.base_model == "bert-base-uncased"
  assert data.datasets == ["rajpurkar/squad_v2"]
  assert data.license == "apache-2.0"
  assert data.pipeline_tag == "question-answering"
  assert data.library_name == "transformers"
  assert data.model_name == "squad-qa"
  # The end-of-training results describe ckpt-12 (see model_dir).
  assert [(r.metric_name, r.metric_value, r.dataset_type, r.dataset_split)
          for r in data.eval_results] == [
              ("F1", 50.0, "rajpurkar/squad_v2", "validation")]
  assert f"tfqa {tfqa.__version__}" in text


def test_card_model_index_of_a_v2_run_has_has_ans_and_no_ans(model_dir):
  _write_results(model_dir, "", exact=40.5, f1=50.25, HasAns_exact=30.0,
                 HasAns_f1=45.0, NoAns_exact=51.0, NoAns_f1=51.0,
                 global_step=12, checkpoint="/abs/run/checkpoints/ckpt-12")
  data = _metadata(card.model_card(
      _trained(model_dir, tfds_dataset=None, train_file="/d/train-v2.0.json",
               eval_file="/d/dev-v2.0.json"),
      model_name="tfqa", version=1, verification={"skipped": True},
      license_id="mit"))
  assert data.license == "mit"
  assert data.datasets == ["rajpurkar/squad_v2"]
  assert [(r.metric_type, r.metric_name, r.metric_value)
          for r in data.eval_results] == [
              ("exact_match", "Exact match", 40.5), ("f1", "F1", 50.25),
              ("exact_match", "HasAns exact match", 30.0),
              ("f1", "HasAns F1", 45.0),
              ("exact_match", "NoAns exact match", 51.0),
              ("f1", "NoAns F1", 51.0)]
  assert {r.dataset_name for r in data.eval_results} == {"dev-v2.0.json"}


def test_card_of_a_run_on_other_data_from_a_local_model(model_dir, tmp_path):
  local_model = str(tmp_path / "models" / "my-bert")
  os.makedirs(local_model)
  _write_results(model_dir, "", exact=1.0, f1=2.0, global_step=12)
  text = card.model_card(
      _trained(model_dir, model=local_model, tfds_dataset=None,
               train_file="/data/mine/train.json",
               eval_file="/data/mine/dev.json", version_2=False),
      model_name="tfqa", version=1, verification=_VERIFICATION)
  data = _metadata(text)
  assert data.base_model is None and data.datasets is None
  assert [(r.dataset_type, r.dataset_name, r.metric_value)
          for r in data.eval_results] == [("json", "dev.json", 1.0),
                                          ("json", "dev.json", 2.0)]
  assert "a local pretrained directory" in text


@pytest.mark.parametrize("model, bert_config_file, base_model", [
    ("minilm-l6", None, "sentence-transformers/all-MiniLM-L6-v2"),
    (None, "bert_config.json", None),
])
def test_card_base_model_of_the_bundled_encoder_and_a_config(
    model_dir, model, bert_config_file, base_model):
  data = _metadata(card.model_card(
      _trained(model_dir, model=model, bert_config_file=bert_config_file),
      model_name="tfqa", version=1, verification=_VERIFICATION))
  assert data.base_model == base_model


def test_card_names_no_local_path(model_dir, tmp_path):
  _write_results(model_dir, "", f1=1.0, global_step=12,
                 checkpoint=os.path.join(model_dir, "checkpoints", "ckpt-12"),
                 eval_file="/home/someone/data/dev.json")
  text = card.model_card(
      _trained(model_dir, tfds_dataset=None,
               train_file="/home/someone/data/train.json",
               eval_file="/home/someone/data/dev.json"),
      model_name="tfqa", version=1, verification=_VERIFICATION)
  assert str(tmp_path) not in text
  assert "/home/someone" not in text
  assert "`dev.json`" in text and "`train.json`" in text


def test_card_usage_snippets_name_the_export_s_paths(model_dir):
  text = card.model_card(_trained(model_dir), model_name="squad-qa",
                         version=3, verification=_VERIFICATION)
  transformers5 = text.split(card.TRANSFORMERS_USAGE_HEADING)[1].split(
      "```")[1]
  assert ('AutoModelForQuestionAnswering.from_pretrained("pretrained")'
          in transformers5)
  # The run's window, longest answer and (v2.0) no-answer threshold.
  assert "max_length=384," in transformers5
  assert "triu(30)" in transformers5
  assert "if start[0] + end[0] - scores[first, last] > 0.0:" in transformers5
  assert "framework=" not in transformers5
  saved_model = text.split(card.SAVED_MODEL_USAGE_HEADING)[1]
  assert ('tf.saved_model.load("saved_model/squad-qa/3")'
          in saved_model.split("```")[1])
  tf_snippet = text.split(card.TF_USAGE_HEADING)[1].split("```")[1]
  assert 'use_safetensors=False' in tf_snippet
  assert "handle_impossible_answer=True" in tf_snippet


def test_card_usage_of_a_v1_run_has_no_no_answer_branch(model_dir):
  text = card.model_card(_trained(model_dir, version_2=False),
                         model_name="tfqa", version=1,
                         verification=_VERIFICATION)
  transformers5 = text.split(card.TRANSFORMERS_USAGE_HEADING)[1].split(
      "```")[1]
  assert "no answer" not in transformers5
  assert transformers5.rstrip().endswith(
      "print(context[offsets[first][0]:offsets[last][1]])")
