"""A trained model for inference: run directory -> model with checkpoint weights, tokenizer, config."""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from tfqa import config as config_lib
from tfqa import preflight
from tfqa.data import windows as windows_lib
from tfqa.layout import checkpointing
from tfqa.layout import fs
from tfqa.layout import rundir
from tfqa.model import modeling
from tfqa.model import source as model_source


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  model: object  # TFBertForQuestionAnswering
  tokenizer: object  # BertTokenizerFast
  run_config: config_lib.RunConfig
  checkpoint: str
  model_dir: str


def load(model_dir: str, *, checkpoint: str | None = None,
         checked: preflight.Checked | None = None) -> TrainedModel:
  """Rebuilds a run's model (no dropout) and restores checkpoint weights.

  Args:
    model_dir: a tfqa_train --model_dir.
    checkpoint: a checkpoint prefix; defaults to the newest readable one.
    checked: what the caller's preflight check returned; the inputs it
      covers are not checked again.

  Raises:
    ValueError: not a tfqa run directory, or no usable checkpoint.
    CheckpointError: the checkpoint does not fit the saved architecture.
  """
  run_config = rundir.read_run_config(model_dir)
  if run_config is None:
    raise ValueError(f"{model_dir} has no {rundir.RUN_CONFIG_FILE}: it is not "
                     f"a tfqa_train --model_dir.")
  bert_config = os.path.join(model_dir, rundir.BERT_CONFIG_FILE)
  tokenizer_dir = os.path.join(model_dir, rundir.TOKENIZER_SUBDIR)
  for path in (bert_config, tokenizer_dir):
    if not fs.exists(path):
      raise ValueError(f"{model_dir} lacks {os.path.basename(path)}; was "
                       f"training started in it?")
  if checkpoint is None:
    checkpoint = checkpointing.latest_readable(model_dir)
    if checkpoint is None:
      raise ValueError(f"{model_dir} has no checkpoint yet.")
  else:
    preflight.unless_checked(checked, preflight.check_checkpoint,
                             checkpoint=checkpoint, model_dir=model_dir)
    checkpointing.verify_readable(checkpoint)
  model, _ = modeling.build_model(
      model_source.ModelSource("bert_config", bert_config, tokenizer_dir),
      dropout=False)
  checkpointing.restore_model(model, checkpoint)
  tokenizer = windows_lib.load_tokenizer(tokenizer_dir)
  return TrainedModel(model, tokenizer, run_config, checkpoint, model_dir)
