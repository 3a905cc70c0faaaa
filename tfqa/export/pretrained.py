"""The `save_pretrained` copy of a run (model.safetensors, tf_model.h5, config, tokenizer) for transformers and PyTorch."""

from __future__ import annotations

import json
import os

from tfqa import exportdir
from tfqa import modeling
from tfqa import rundir
from tfqa import trained_model

# safetensors metadata that transformers reads as "PyTorch weights".
_SAFETENSORS_METADATA = {"format": "pt"}


def save_pretrained(trained: trained_model.TrainedModel,
                    directory: str) -> None:
  """Writes model.safetensors, tf_model.h5, config.json and the tokenizer."""
  # The serving model was built without dropout; the config written here is
  # the run's architecture, so fine-tuning from this directory gets the
  # dropout the run trained with (inference ignores it either way).
  with open(os.path.join(trained.model_dir, rundir.BERT_CONFIG_FILE),
            encoding="utf-8") as f:
    architecture = json.load(f)
  for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
    if name in architecture:
      setattr(trained.model.config, name, architecture[name])
  trained.model.save_pretrained(directory)
  write_safetensors(trained.model, directory)
  trained.tokenizer.save_pretrained(directory)


def write_safetensors(model, directory: str) -> str:
  """Writes the model's weights as PyTorch model.safetensors; returns its path.

  Written with safetensors' NumPy API: no torch needed.
  """
  from safetensors import numpy as safetensors_numpy  # pylint: disable=import-outside-toplevel

  path = os.path.join(directory, exportdir.SAFETENSORS_FILE)
  safetensors_numpy.save_file(modeling.pytorch_weights(model), path,
                              metadata=_SAFETENSORS_METADATA)
  return path
