"""Examples to model windows: tokenization with offsets, sliding windows and labels."""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from tfqa import config as config_lib
from tfqa import errors
from tfqa.data import squad as squad_lib
from tfqa.layout import fs

# Char span of a token that is not a context token (question, [CLS], [SEP]).
NOT_CONTEXT = -1


@dataclasses.dataclass(frozen=True, eq=False)
class Features:
  """Model windows built from examples, one row per window (unpadded).

  Attributes:
    input_ids: per window, int32 ids `[CLS] question [SEP] context-part [SEP]`.
    token_type_ids: per window, 0 for the question part and 1 for the context
      part, int32.
    start_positions: int32 [num_windows], token index of the answer start in
      its window; 0 (the [CLS] position) when the window has no answer.
    end_positions: int32 [num_windows], like start_positions for the end.
    example_index: int32 [num_windows], index of the window's example in the
      examples the features were built from.
    context_offset: int32 [num_windows], index of the first context token in
      the window.
    token_char_spans: per window, int32 [num_context_tokens, 2] with the
      [start, end) char offsets in the example's context of each context token
      of the window.
  """

  input_ids: tuple[np.ndarray, ...]
  token_type_ids: tuple[np.ndarray, ...]
  start_positions: np.ndarray
  end_positions: np.ndarray
  example_index: np.ndarray
  context_offset: np.ndarray
  token_char_spans: tuple[np.ndarray, ...]

  def __len__(self) -> int:
    return len(self.input_ids)

  @property
  def lengths(self) -> np.ndarray:
    """Unpadded length of each window, int32 [num_windows]."""
    return np.array([len(ids) for ids in self.input_ids], dtype=np.int32)


def load_tokenizer(path: str, *, do_lower_case: bool | None = None):
  """Loads a Hugging Face fast BERT tokenizer (it provides char offsets).

  Args:
    path: a tokenizer directory (`save_pretrained` layout, or any directory
      holding `vocab.txt`) or a WordPiece `vocab.txt` file.
    do_lower_case: overrides the casing stored with the tokenizer; required
      when `path` is a bare vocab file.

  Returns:
    A `transformers.BertTokenizerFast`.

  Raises:
    ValueError: the path holds no usable vocabulary.
  """
  # Only a Python-side tokenizer needs transformers (training, evaluation,
  # the checkpoint and ONNX predictors): the SavedModel predictor imports
  # this module, tokenizes in its graph, and never loads transformers
  # (tests/test_inference_predictor.py).
  import transformers  # pylint: disable=import-outside-toplevel

  if fs.is_url(path) and fs.exists(path):
    with fs.local_copy(path) as local:  # transformers reads local files only
      return load_tokenizer(local, do_lower_case=do_lower_case)
  if fs.isfile(path):
    if do_lower_case is None:
      raise errors.ArgumentNamingError(
          f"Loading a tokenizer from the bare vocab file "
          f"{errors.literal(repr(path))} needs {{do_lower_case:q}} (True for "
          f"uncased models, False for cased ones).", ["do_lower_case"])
    return transformers.BertTokenizerFast(
        vocab_file=path, do_lower_case=do_lower_case)
  kwargs = {} if do_lower_case is None else {"do_lower_case": do_lower_case}
  if (not fs.exists(path) and not fs.is_url(path) and
      not path.startswith((".", "/", "~"))):
    # A hub name such as "bert-base-uncased" (needs the network or the
    # Hugging Face cache).
    return transformers.BertTokenizerFast.from_pretrained(path, **kwargs)
  if not fs.isdir(path):
    raise ValueError(
        f"Tokenizer path {path!r} does not exist. Expected a tokenizer "
        f"directory (with tokenizer.json or vocab.txt), a vocab.txt file or "
        f"a Hugging Face hub name.")
  if not any(fs.exists(os.path.join(path, name))
             for name in ("tokenizer.json", "vocab.txt")):
    raise ValueError(
        f"Tokenizer directory {path!r} holds neither tokenizer.json nor "
        f"vocab.txt. Point it at a `save_pretrained` directory or a vocab file.")
  tokenizer = transformers.BertTokenizerFast.from_pretrained(
      path, local_files_only=True, **kwargs)
  return tokenizer


def build_features(examples: Sequence[squad_lib.SquadExample], tokenizer,
                   feature_config: config_lib.FeatureConfig) -> Features:
  """Tokenizes examples and cuts their contexts into overlapping windows.

  Windows start every `doc_stride` context tokens (the original BERT
  semantics: the stride is the step between window starts, not the overlap)
  until one reaches the end of the context, so every context token lies in at
  least one window. Each window is labelled with the first gold answer's
  token span when the window contains it whole, else with the [CLS] position.

  Args:
    examples: the examples, in the order `example_index` refers to.
    tokenizer: a fast BERT tokenizer (see `load_tokenizer`).
    feature_config: window sizes.

  Returns:
    The windows of all examples, grouped by example in example order.
  """
  question_ids = _tokenize_questions(
      [e.question for e in examples], tokenizer, feature_config.max_query_length)
  context_tokens = _tokenize_contexts([e.context for e in examples], tokenizer)
  columns = _FeatureColumns()
  for index, example in enumerate(examples):
    ids, spans = context_tokens[example.context]
    answer_tokens = _answer_token_span(example, spans)
    _append_windows(columns, index, question_ids[index], ids, spans,
                    answer_tokens, tokenizer, feature_config)
  return columns.freeze()


def _tokenize_questions(questions, tokenizer, max_query_length):
  encoded = tokenizer(list(questions), add_special_tokens=False,
                      verbose=False)["input_ids"]
  return [ids[:max_query_length] for ids in encoded]


def _tokenize_contexts(contexts, tokenizer):
  """Maps each distinct context to (token ids, [start, end) char spans)."""
  unique = list(dict.fromkeys(contexts))
  # Contexts are longer than the model's maximum on purpose (they are
  # windowed next), so the tokenizer's length warning is silenced.
  encoded = tokenizer(unique, add_special_tokens=False,
                      return_offsets_mapping=True, verbose=False)
  return {
      context: (np.asarray(ids, np.int32),
                np.asarray(offsets, np.int32).reshape(-1, 2))
      for context, ids, offsets in zip(unique, encoded["input_ids"],
                                       encoded["offset_mapping"])
  }


def _answer_token_span(example, spans):
  """Token [start, end] (inclusive) of the first gold answer, or None."""
  if example.is_impossible or not example.answer_texts or len(spans) == 0:
    return None
  char_start = example.answer_starts[0]
  char_end = char_start + len(example.answer_texts[0])
  # First token ending after the answer start; last token starting before
  # its end. Robust to answers that begin or end inside a word piece.
  start = int(np.searchsorted(spans[:, 1], char_start, side="right"))
  end = int(np.searchsorted(spans[:, 0], char_end, side="left")) - 1
  if start >= len(spans) or end < start:
    return None
  return start, end


def window_starts(num_context_tokens: int, max_context_tokens: int,
                  doc_stride: int) -> list[int]:
  """Start token of each window over a context of `num_context_tokens`."""
  starts = [0]
  while starts[-1] + max_context_tokens < num_context_tokens:
    starts.append(starts[-1] + doc_stride)
  return starts


def _append_windows(columns, example_index, question_ids, context_ids,
                    context_spans, answer_tokens, tokenizer, feature_config):
  max_context_tokens = feature_config.max_context_tokens(len(question_ids))
  prefix = np.concatenate([[tokenizer.cls_token_id], question_ids,
                           [tokenizer.sep_token_id]]).astype(np.int32)
  offset = len(prefix)
  for start in window_starts(len(context_ids), max_context_tokens,
                             feature_config.doc_stride):
    stop = min(start + max_context_tokens, len(context_ids))
    input_ids = np.concatenate(
        [prefix, context_ids[start:stop], [tokenizer.sep_token_id]])
    token_type_ids = np.zeros(len(input_ids), np.int32)
    token_type_ids[offset:] = 1
    label = (0, 0)
    if (answer_tokens is not None and answer_tokens[0] >= start and
        answer_tokens[1] < stop):
      label = (answer_tokens[0] - start + offset,
               answer_tokens[1] - start + offset)
    columns.append(input_ids.astype(np.int32), token_type_ids, label,
                   example_index, offset, context_spans[start:stop])


class _FeatureColumns:
  """Accumulates windows column by column."""

  def __init__(self):
    self.input_ids, self.token_type_ids, self.token_char_spans = [], [], []
    self.labels, self.example_index, self.context_offset = [], [], []

  def append(self, input_ids, token_type_ids, label, example_index, offset,
             spans):
    self.input_ids.append(input_ids)
    self.token_type_ids.append(token_type_ids)
    self.labels.append(label)
    self.example_index.append(example_index)
    self.context_offset.append(offset)
    self.token_char_spans.append(spans)

  def freeze(self) -> Features:
    labels = np.asarray(self.labels, np.int32).reshape(-1, 2)
    return Features(
        input_ids=tuple(self.input_ids),
        token_type_ids=tuple(self.token_type_ids),
        start_positions=labels[:, 0].copy(),
        end_positions=labels[:, 1].copy(),
        example_index=np.asarray(self.example_index, np.int32),
        context_offset=np.asarray(self.context_offset, np.int32),
        token_char_spans=tuple(self.token_char_spans))


def labelled_answer_text(features: Features, window: int,
                         examples: Sequence[squad_lib.SquadExample]) -> str:
  """The context text under a window's label ("" for a [CLS] label)."""
  start = int(features.start_positions[window])
  end = int(features.end_positions[window])
  if start == 0 and end == 0:
    return ""
  spans = features.token_char_spans[window]
  offset = int(features.context_offset[window])
  context = examples[int(features.example_index[window])].context
  return context[spans[start - offset, 0]:spans[end - offset, 1]]


def padded_width(longest, pipeline_config: config_lib.PipelineConfig,
                 max_seq_length: int, *, minimum=np.minimum):
  """The width a batch of windows is padded to, its longest being `longest`.

  One rule for training's dataset (data/pipeline.py: tensors, with
  minimum=tf.minimum) and inference's NumPy batches (inference/batching.py).
  """
  if pipeline_config.padding == "max_length":
    return longest * 0 + max_seq_length  # longest's type, shape and dtype
  multiple = pipeline_config.pad_to_multiple_of
  rounded = (longest + multiple - 1) // multiple * multiple
  return minimum(rounded, max(max_seq_length, 1))
