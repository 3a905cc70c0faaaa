"""Run settings as frozen dataclasses: the one place that holds tfqa's defaults."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  """How examples become fixed-size model windows."""

  # Total tokens per window: [CLS] question [SEP] context [SEP].
  max_seq_length: int = 384
  # Tokens between the starts of two consecutive context windows.
  doc_stride: int = 128
  # Questions longer than this many word pieces are cut.
  max_query_length: int = 64

  def __post_init__(self):
    _require_positive(self, "max_seq_length", "doc_stride", "max_query_length")
    if self.max_query_length + 3 >= self.max_seq_length:
      raise ValueError(
          f"Invalid value for argument `max_query_length`. Received: "
          f"max_query_length={self.max_query_length} with "
          f"max_seq_length={self.max_seq_length}. Expected max_query_length + 3 "
          f"< max_seq_length so that some context fits in each window. "
          f"Lower max_query_length or raise max_seq_length.")
    if self.doc_stride > self.max_seq_length - self.max_query_length - 3:
      raise ValueError(
          f"Invalid value for argument `doc_stride`. Received: "
          f"doc_stride={self.doc_stride}. Expected doc_stride <= "
          f"max_seq_length - max_query_length - 3 = "
          f"{self.max_seq_length - self.max_query_length - 3}, otherwise "
          f"windows leave gaps and answers can be lost. Lower doc_stride.")


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
  """How start/end logits become answer strings."""

  # Candidate starts and ends considered per window.
  n_best_size: int = 20
  # Longest answer, in word pieces.
  max_answer_length: int = 30
  # SQuAD v2.0: predict a null answer when the best non-null span does not beat
  # the null score by more than this margin.
  null_score_diff_threshold: float = 0.0
  # Whether questions may have no answer (SQuAD v2.0).
  version_2_with_negative: bool = False

  def __post_init__(self):
    _require_positive(self, "n_best_size", "max_answer_length")


def _require_positive(config, *names):
  for name in names:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
      raise ValueError(
          f"Invalid value for argument `{name}`. Received: {name}={value!r}. "
          f"Expected a positive integer.")
