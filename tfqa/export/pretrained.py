"""The `save_pretrained` copy of a run (model.safetensors, tf_model.h5, config, tokenizer) for transformers and PyTorch."""

from __future__ import annotations

import os

from safetensors import numpy as safetensors_numpy

from tfqa.inference import trained_model
from tfqa.layout import exportdir
from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.layout import rundir
from tfqa.model import modeling

# safetensors metadata that transformers reads as "PyTorch weights".
_SAFETENSORS_METADATA = {"format": "pt"}


def save_pretrained(trained: trained_model.TrainedModel,
                    directory: str) -> None:
  """Writes model.safetensors, tf_model.h5, config.json and the tokenizer."""
  # The serving model was built without dropout; the config written here is
  # the run's architecture, so fine-tuning from this directory gets the
  # dropout the run trained with (inference ignores it either way).
  architecture = json_files.read_json(
      os.path.join(trained.model_dir, rundir.BERT_CONFIG_FILE),
      what="the run's BERT config")
  for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
    if name in architecture:
      setattr(trained.model.config, name, architecture[name])
  # transformers writes local files only (h5 through h5py).
  with fs.local_dir_for(directory) as local:
    trained.model.save_pretrained(local)
    write_safetensors(trained.model, local)
    trained.tokenizer.save_pretrained(local)


def write_safetensors(model, directory: str) -> str:
  """Writes the model's weights as PyTorch model.safetensors; returns its path.

  Written with safetensors' NumPy API (no torch needed) into a local
  directory.
  """
  path = os.path.join(directory, exportdir.SAFETENSORS_FILE)
  safetensors_numpy.save_file(modeling.pytorch_weights(model), path,
                              metadata=_SAFETENSORS_METADATA)
  return path
