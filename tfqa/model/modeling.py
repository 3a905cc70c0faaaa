"""Building TFBertForQuestionAnswering from a model source (pretrained weights, PyTorch safetensors or a BERT config); its weights under PyTorch's names."""

from __future__ import annotations

import dataclasses
import json
import os
import re

from absl import logging
import numpy as np
from safetensors import numpy as safetensors_numpy
import transformers
from transformers import modeling_tf_pytorch_utils

from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.model import source as model_source

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


def build_model(source: model_source.ModelSource, *, dropout: bool = True):
  """Builds a TFBertForQuestionAnswering and reports what was loaded.

  Args:
    source: where the weights or config come from (model_source.resolve).
    dropout: keep the config's dropout rates; False zeroes them.

  Returns:
    (model, WeightsReport). The model is built (its variables exist).
    Nothing is logged: the caller whose weights these are passes the report
    to `log_weights_report` (a model built only to receive a checkpoint's
    weights has nothing to report).
  """
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
    bert_config = transformers.BertConfig(**json_files.read_json(
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

