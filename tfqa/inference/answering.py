"""Questions to answers with any logits function: windows -> logits -> decoded answers, with a run's settings."""

from __future__ import annotations

import dataclasses
from typing import Sequence

from tfqa import config as config_lib
from tfqa.data import squad as squad_lib
from tfqa.data import windows as windows_lib
from tfqa.evaluation import decoding
from tfqa.inference import batching
from tfqa.inference import logits as logits_lib


@dataclasses.dataclass(frozen=True)
class Answered:
  """What answering examples made: windows, their logits, the answers."""

  windows: windows_lib.Features
  logits: logits_lib.WindowLogits
  predictions: decoding.Predictions


def logits_of(logits_fn: logits_lib.LogitsFn,
              windows: windows_lib.Features, config: config_lib.RunConfig,
              *, batch_size: int | None = None) -> logits_lib.WindowLogits:
  """Unpadded logits of every window, batched as the run pads.

  Args:
    logits_fn: any logits_lib.LogitsFn.
    windows: the examples' windows.
    config: the run's config (padding, max_seq_length, eval_batch_size).
    batch_size: windows per call (default: the run's eval_batch_size).
  """
  return logits_lib.window_logits(
      logits_fn, windows, batching.length_sorted_batches(
          windows, **_batching(config, batch_size)))


def padded_tokens(windows: windows_lib.Features, config: config_lib.RunConfig,
                  *, batch_size: int | None = None) -> int:
  """Tokens, padding included, that logits_of has the model compute for
  `windows` (the same batches)."""
  return batching.padded_tokens(windows.lengths,
                                **_batching(config, batch_size))


def _batching(config, batch_size):
  return dict(batch_size=batch_size or config.train.eval_batch_size,
              max_seq_length=config.features.max_seq_length,
              pipeline_config=config.pipeline)


def answer_examples(examples: Sequence[squad_lib.SquadExample],
                    logits_fn: logits_lib.LogitsFn,
                    config: config_lib.RunConfig, *, tokenizer=None,
                    windows: windows_lib.Features | None = None,
                    batch_size: int | None = None) -> Answered:
  """Windows, logits from `logits_fn` and answers, with the run's settings.

  Args:
    examples: the questions and contexts.
    logits_fn: any logits_lib.LogitsFn.
    config: the run's config (windows, batches, decoding).
    tokenizer: the run's tokenizer; builds the windows unless given.
    windows: the examples' windows, when already built (several models
      answering the same examples).
    batch_size: windows per call (default: the run's eval_batch_size).

  Raises:
    ValueError: neither `tokenizer` nor `windows`.
  """
  if windows is None:
    if tokenizer is None:
      raise ValueError("answer_examples needs `tokenizer` (to build the "
                       "windows) or `windows`; received neither.")
    windows = windows_lib.build_features(examples, tokenizer,
                                          config.features)
  logits = logits_of(logits_fn, windows, config, batch_size=batch_size)
  predictions = decoding.decode_predictions(examples, windows, *logits,
                                           config.decode)
  return Answered(windows, logits, predictions)
