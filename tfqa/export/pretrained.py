"""The `save_pretrained` copy of a run (tf_model.h5, config, tokenizer) for transformers and PyTorch."""

from __future__ import annotations

import json
import os

from tfqa import rundir
from tfqa import trained_model


def save_pretrained(trained: trained_model.TrainedModel,
                    directory: str) -> None:
  """Writes the save_pretrained model (tf_model.h5, config.json) and tokenizer."""
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
  trained.tokenizer.save_pretrained(directory)
