"""Tests for tfqa.model.modeling: building a model from its source, what was loaded, its PyTorch names."""

import json
import logging
import os
import shutil

import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy
import tensorflow as tf
import transformers

from tfqa import config
from tfqa.inference import logits as logits_lib
from tfqa.model import modeling
from tfqa.model import source as model_source

from conftest import require_pretrained_model_dir
from conftest import tiny_vocab
from conftest import width8_bert_config

# One layer of width 8: every weight is small enough to compare whole.
TINY_BERT = width8_bert_config(hidden_dropout_prob=0.2,
                               attention_probs_dropout_prob=0.3)
NUM_TINY_WEIGHTS = 5 + 16 + 2  # embeddings, one encoder layer, qa_outputs
QUERY_KERNEL = "bert.encoder.layer.0.attention.self.query.weight"


def _tiny_config():
  return transformers.BertConfig(**TINY_BERT)


def _tiny_model(cls=transformers.TFBertForQuestionAnswering):
  model = cls(_tiny_config())
  model(model.dummy_inputs, training=False)
  return model


def _weight(model, suffix):
  """The value of the model's one weight whose name ends with `suffix`."""
  found = [w for w in model.weights if w.name.endswith(suffix)]
  assert len(found) == 1, (suffix, [w.name for w in model.weights])
  return found[0].numpy()


def _write_safetensors_dir(directory, state_dict):
  os.makedirs(directory)
  _tiny_config().to_json_file(os.path.join(directory, "config.json"))
  safetensors_numpy.save_file(state_dict,
                              os.path.join(directory, "model.safetensors"))
  return str(directory)


def _absl_warnings(caplog):
  return [r.getMessage() for r in caplog.records
          if r.name == "absl" and r.levelno >= logging.WARNING]


@pytest.fixture(scope="module")
def qa_bert_config():
  """conftest's qa_config_file holds TINY_BERT: dropout rates of its own."""
  return TINY_BERT


@pytest.fixture(scope="module")
def tf_model_dir(tmp_path_factory):
  """A save_pretrained directory of a QA model (tf_model.h5 + config.json)."""
  directory = tmp_path_factory.mktemp("tf_qa_model")
  _tiny_model().save_pretrained(str(directory))
  return str(directory)


@pytest.fixture(scope="module")
def tf_encoder_dir(tmp_path_factory):
  """A save_pretrained directory of an encoder (pooler, no qa_outputs)."""
  directory = tmp_path_factory.mktemp("tf_encoder")
  _tiny_model(transformers.TFBertModel).save_pretrained(str(directory))
  return str(directory)


@pytest.fixture(scope="module")
def pytorch_state_dict():
  state = modeling.pytorch_weights(_tiny_model())
  assert QUERY_KERNEL in state and "qa_outputs.weight" in state
  return state


@pytest.fixture(scope="module")
def safetensors_dir(tmp_path_factory, pytorch_state_dict):
  return _write_safetensors_dir(
      tmp_path_factory.mktemp("st") / "model", pytorch_state_dict)


# WeightsReport


def test_report_expected_differences_are_not_surprising():
  report = modeling.WeightsReport(
      "src", missing=("qa_outputs", "qa_outputs.weight", "qa_outputs.bias"),
      unexpected=("pooler.dense.weight", "bert.pooler.dense.bias",
                  "cls.predictions.bias", "cls.seq_relationship.weight",
                  "mlm___cls", "nsp___cls", "embeddings.position_ids"))
  assert report.surprising == ()


def test_report_lists_surprises_missing_then_unexpected_then_mismatched():
  report = modeling.WeightsReport(
      "src", missing=("qa_outputs.bias", "bert.embeddings.LayerNorm.weight"),
      unexpected=("encoder.layer.6.output.dense.bias", "pooler.dense.weight"),
      mismatched=("('qa_outputs.weight', (2, 8), (2, 4))",))
  assert report.surprising == ("bert.embeddings.LayerNorm.weight",
                               "encoder.layer.6.output.dense.bias",
                               "('qa_outputs.weight', (2, 8), (2, 4))")


# build_model


def test_build_from_bert_config(qa_config_file, vocab_file, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  source = model_source.ModelSource("bert_config", qa_config_file, vocab_file)
  model, report = modeling.build_model(source)
  # The caller logs the report, if it wants to.
  assert [r for r in caplog.records if r.name == "absl"] == []
  modeling.log_weights_report(report)
  assert isinstance(model, transformers.TFBertForQuestionAnswering)
  assert report == modeling.WeightsReport(qa_config_file)
  assert len(model.weights) == NUM_TINY_WEIGHTS  # built: variables exist
  assert model.config.num_hidden_layers == 1
  assert (model.config.hidden_dropout_prob,
          model.config.attention_probs_dropout_prob) == (0.2, 0.3)
  assert _absl_warnings(caplog) == []
  assert (f"Built model from {qa_config_file}: 0 missing, 0 unexpected "
          f"weights.") in caplog.messages


def test_build_from_bert_config_without_dropout(qa_config_file, vocab_file):
  model, _ = modeling.build_model(
      model_source.ModelSource("bert_config", qa_config_file, vocab_file),
      dropout=False)
  assert (model.config.hidden_dropout_prob,
          model.config.attention_probs_dropout_prob) == (0.0, 0.0)
  # The model's own dropout layers use the config's rate.
  assert model.bert.embeddings.dropout.rate == 0.0
  # The config file itself is left alone.
  with open(qa_config_file, encoding="utf-8") as f:
    assert json.load(f)["hidden_dropout_prob"] == 0.2


def _h5_weight(path, suffix):
  import h5py  # pylint: disable=import-outside-toplevel
  found = []
  with h5py.File(path, "r") as f:
    f.visititems(lambda name, obj: found.append(obj[()]) if name.endswith(
        suffix) and isinstance(obj, h5py.Dataset) else None)
  assert len(found) == 1, suffix
  return found[0]


@pytest.mark.parametrize("suffix", ["word_embeddings/weight:0",
                                    "layer_._0/attention/self/query/kernel:0",
                                    "qa_outputs/kernel:0"])
def test_build_from_tf_pretrained_loads_the_file(tf_model_dir, suffix, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  source = model_source.resolve(config.ModelConfig(model=tf_model_dir))
  model, report = modeling.build_model(source)
  assert report == modeling.WeightsReport(tf_model_dir)
  assert len(model.weights) == NUM_TINY_WEIGHTS
  expected = _h5_weight(os.path.join(tf_model_dir, "tf_model.h5"), suffix)
  np.testing.assert_array_equal(_weight(model, suffix), expected)
  modeling.log_weights_report(report)
  assert _absl_warnings(caplog) == []


@pytest.mark.parametrize("kind, directory", [
    ("tf_pretrained", "tf_model_dir"), ("safetensors", "safetensors_dir")])
def test_build_from_a_directory_without_dropout(request, kind, directory):
  path = request.getfixturevalue(directory)
  source = model_source.ModelSource(kind, path, path)
  model, _ = modeling.build_model(source, dropout=False)
  assert (model.config.hidden_dropout_prob,
          model.config.attention_probs_dropout_prob) == (0.0, 0.0)
  model, _ = modeling.build_model(source)
  assert (model.config.hidden_dropout_prob,
          model.config.attention_probs_dropout_prob) == (0.2, 0.3)


@pytest.fixture
def generator_dropout():
  import tf_keras
  was_on = tf_keras.backend.experimental.is_tf_random_generator_enabled()
  tf_keras.backend.experimental.enable_tf_random_generator()
  yield
  if not was_on:
    tf_keras.backend.experimental.disable_tf_random_generator()


@pytest.mark.parametrize("kind, directory", [
    ("bert_config", "qa_config_file"), ("tf_pretrained", "tf_model_dir"),
    ("safetensors", "safetensors_dir")])
def test_every_source_gives_checkpointable_dropout(request, generator_dropout,
                                                   kind, directory):
  # A save_pretrained directory gave dropout layers without generators:
  # training from it failed before its first step.
  from tfqa.layout import checkpointing
  path = request.getfixturevalue(directory)
  model, _ = modeling.build_model(model_source.ModelSource(kind, path, path))
  assert len(checkpointing.dropout_generators(model)) == 4


def test_build_from_tf_encoder_gets_a_fresh_head(tf_encoder_dir, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  model, report = modeling.build_model(
      model_source.ModelSource("tf_pretrained", tf_encoder_dir, tf_encoder_dir))
  assert report.missing == ("qa_outputs",)
  assert report.unexpected == () and report.mismatched == ()
  assert report.surprising == ()
  modeling.log_weights_report(report)
  assert _absl_warnings(caplog) == []
  suffix = "layer_._0/output/dense/kernel:0"
  np.testing.assert_array_equal(
      _weight(model, suffix),
      _h5_weight(os.path.join(tf_encoder_dir, "tf_model.h5"), suffix))


def test_build_from_safetensors_loads_pytorch_layouts(safetensors_dir,
                                                      caplog):
  caplog.set_level(logging.INFO, logger="absl")
  source = model_source.resolve(config.ModelConfig(model=safetensors_dir))
  model, report = modeling.build_model(source)
  assert report == modeling.WeightsReport(safetensors_dir)
  modeling.log_weights_report(report)
  assert _absl_warnings(caplog) == []
  saved = safetensors_numpy.load_file(
      os.path.join(safetensors_dir, "model.safetensors"))
  # PyTorch stores Linear weights as [out, in]: TF kernels are transposed.
  np.testing.assert_array_equal(
      _weight(model, "layer_._0/attention/self/query/kernel:0"),
      saved[QUERY_KERNEL].T)
  np.testing.assert_array_equal(_weight(model, "qa_outputs/kernel:0"),
                                saved["qa_outputs.weight"].T)
  np.testing.assert_array_equal(_weight(model, "word_embeddings/weight:0"),
                                saved["bert.embeddings.word_embeddings.weight"])
  np.testing.assert_array_equal(
      _weight(model, "embeddings/LayerNorm/gamma:0"),
      saved["bert.embeddings.LayerNorm.weight"])
  assert model.config.hidden_dropout_prob == 0.2


def test_pytorch_weights_invert_the_safetensors_loader(safetensors_dir):
  # One mapping both ways: weights written by pytorch_weights and read back
  # by transformers' PyTorch -> TF loader are the same, name by name.
  model, report = modeling.build_model(model_source.ModelSource(
      "safetensors", safetensors_dir, safetensors_dir))
  assert report.missing == report.unexpected == report.mismatched == ()
  saved = safetensors_numpy.load_file(
      os.path.join(safetensors_dir, "model.safetensors"))
  again = modeling.pytorch_weights(model)
  assert sorted(again) == sorted(saved)
  assert len(again) == NUM_TINY_WEIGHTS
  for name, value in saved.items():
    np.testing.assert_array_equal(again[name], value, err_msg=name)
  assert again[QUERY_KERNEL].shape == (8, 8)
  assert again["qa_outputs.weight"].shape == (2, 8)  # PyTorch's [out, in]


def test_build_from_a_directory_with_both_weight_files_reads_tf_weights(
    tmp_path, tf_model_dir):
  # An export's pretrained/: tf_model.h5 and PyTorch model.safetensors.
  # transformers 4.57's TF loader would pick the safetensors and fail.
  directory = tmp_path / "both"
  shutil.copytree(tf_model_dir, directory)
  other = modeling.pytorch_weights(_tiny_model())
  safetensors_numpy.save_file(other, str(directory / "model.safetensors"),
                              metadata={"format": "pt"})
  source = model_source.resolve(config.ModelConfig(model=str(directory)))
  assert source.kind == "tf_pretrained"
  model, report = modeling.build_model(source)
  assert report.surprising == ()
  suffix = "layer_._0/attention/self/query/kernel:0"
  np.testing.assert_array_equal(
      _weight(model, suffix),
      _h5_weight(os.path.join(tf_model_dir, "tf_model.h5"), suffix))


def test_build_from_encoder_safetensors_expects_fresh_head(
    tmp_path, pytorch_state_dict, caplog):
  # Like a PyTorch BertModel checkpoint (the bundled MiniLM): no "bert."
  # prefix, a pooler, the position_ids buffer and no qa_outputs.
  state = {name.removeprefix("bert."): value
           for name, value in pytorch_state_dict.items()
           if not name.startswith("qa_outputs")}
  state["pooler.dense.weight"] = np.ones((8, 8), np.float32)
  state["pooler.dense.bias"] = np.zeros(8, np.float32)
  state["embeddings.position_ids"] = np.arange(64, dtype=np.int64)[None]
  directory = _write_safetensors_dir(tmp_path / "encoder", state)
  caplog.set_level(logging.INFO, logger="absl")
  model, report = modeling.build_model(
      model_source.ModelSource("safetensors", directory, directory))
  assert sorted(report.missing) == ["qa_outputs.bias", "qa_outputs.weight"]
  assert report.unexpected == ("embeddings.position_ids",)
  assert report.surprising == ()
  modeling.log_weights_report(report)
  assert _absl_warnings(caplog) == []
  np.testing.assert_array_equal(
      _weight(model, "layer_._0/attention/self/query/kernel:0"),
      pytorch_state_dict[QUERY_KERNEL].T)


def test_build_warns_about_a_missing_encoder_weight(tmp_path,
                                                    pytorch_state_dict,
                                                    caplog):
  state = dict(pytorch_state_dict)
  del state[QUERY_KERNEL]
  # A layer the config does not have: unexpected, and surprising too.
  extra = "bert.encoder.layer.1.attention.self.query.weight"
  state[extra] = np.zeros((8, 8), np.float32)
  directory = _write_safetensors_dir(tmp_path / "damaged", state)
  caplog.set_level(logging.INFO, logger="absl")
  model, report = modeling.build_model(
      model_source.ModelSource("safetensors", directory, directory))
  modeling.log_weights_report(report)
  assert report.missing == (QUERY_KERNEL,)
  assert report.unexpected == (extra,)
  assert report.surprising == (QUERY_KERNEL, extra)
  assert _absl_warnings(caplog) == [
      f"!!! Weights of {directory} did not match the QA model beyond the "
      f"expected fresh qa_outputs head: {[QUERY_KERNEL, extra]!r}"]
  # The rest was still loaded.
  np.testing.assert_array_equal(_weight(model, "qa_outputs/kernel:0"),
                                pytorch_state_dict["qa_outputs.weight"].T)


# The bundled MiniLM-L6 encoder (loaded once).


@pytest.fixture(scope="module")
def minilm():
  path = require_pretrained_model_dir()
  source = model_source.resolve(config.ModelConfig(model="minilm-l6"))
  model, report = modeling.build_model(source, dropout=False)
  return path, model, report


def test_minilm_shape_and_report(minilm):
  path, model, report = minilm
  assert (model.config.num_hidden_layers, model.config.hidden_size) == (6, 384)
  assert report.source == path
  assert sorted(report.missing) == ["qa_outputs.bias", "qa_outputs.weight"]
  assert report.unexpected == ("embeddings.position_ids",)
  assert report.surprising == ()
  assert model.config.hidden_dropout_prob == 0.0


def test_minilm_weights_come_from_the_file(minilm):
  path, model, _ = minilm
  saved = safetensors_numpy.load_file(os.path.join(path, "model.safetensors"))
  np.testing.assert_array_equal(
      _weight(model, "layer_._5/attention/self/query/kernel:0"),
      saved["encoder.layer.5.attention.self.query.weight"].T)
  np.testing.assert_array_equal(
      _weight(model, "word_embeddings/weight:0")[2000],
      saved["embeddings.word_embeddings.weight"][2000])


def test_minilm_logits(minilm, bert_tokenizer):
  _, model, _ = minilm
  encoded = bert_tokenizer(["who built the lighthouse?"] * 2,
                           ["the keeper built it in 1820.", "paris."],
                           padding=True, return_tensors="tf")
  start, end = logits_lib.model_logits(model, dict(encoded))
  assert start.dtype == end.dtype == tf.float32
  assert start.shape == end.shape == encoded["input_ids"].shape


# config


def test_bert_config_dict_is_plain_json():
  obj = modeling.bert_config_dict(_tiny_model())
  assert json.loads(json.dumps(obj)) == obj
  assert {k: obj[k] for k in ("hidden_size", "num_hidden_layers",
                              "vocab_size", "hidden_dropout_prob")} == {
      "hidden_size": 8, "num_hidden_layers": 1,
      "vocab_size": len(tiny_vocab()), "hidden_dropout_prob": 0.2}
  rebuilt = transformers.BertConfig.from_dict(obj)
  assert rebuilt.intermediate_size == 16
