"""The serving graph's model windows: `[CLS] q [SEP] ctx-part [SEP]`, as features.build_features."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfqa.serving.ops import column
from tfqa.serving.ops import gather_or_zero


class GraphWindows(NamedTuple):
  """Model windows of a batch of examples, flattened to [num_windows, seq]."""

  input_ids: tf.Tensor  # int32 [num_windows, seq]
  attention_mask: tf.Tensor  # int32 [num_windows, seq]
  token_type_ids: tf.Tensor  # int32 [num_windows, seq]
  example: tf.Tensor  # int32 [num_windows]: the window's batch row
  context_start: tf.Tensor  # int32 [num_windows]: its first context token
  context_offset: tf.Tensor  # int32 [num_windows]: position of that token
  context_length: tf.Tensor  # int32 [num_windows]: context tokens in window
  batch_size: tf.Tensor  # int32 scalar
  empty_row: tf.Tensor  # bool [batch]: no question or no context pieces


def build_windows(ids, *, question_start, question_length, context_start,
                   context_length, feature_config, tokenizer) -> GraphWindows:
  """`[CLS] q [SEP] ctx-part [SEP]` windows, as `features.build_features`.

  Args:
    ids: int32 [num_pieces], the word pieces of all questions and contexts.
    question_start: int32 [batch], index in `ids` of each question's first
      piece.
    question_length: int32 [batch], pieces of each question.
    context_start: int32 [batch], like question_start for the contexts.
    context_length: int32 [batch], pieces of each context.
    feature_config: window sizes.
    tokenizer: a `GraphBertTokenizer`, for the special token ids.

  Returns:
    The windows of all examples, grouped by example in batch order.
  """
  batch_size = tf.size(question_length)
  empty_row = (question_length == 0) | (context_length == 0)
  question_length = tf.minimum(question_length,
                               feature_config.max_query_length)
  max_context = feature_config.max_context_tokens(question_length)
  stride = feature_config.doc_stride
  # features.window_starts: starts 0, stride, ... until a window reaches the
  # context end, i.e. 1 + ceil((length - max_context) / stride) windows.
  overflow = context_length - max_context
  num_windows = 1 + tf.maximum(0, (overflow + stride - 1) // stride)
  example = tf.repeat(tf.range(batch_size), num_windows)
  first_window = tf.cumsum(num_windows, exclusive=True)
  window_start = (tf.range(tf.size(example)) -
                  tf.gather(first_window, example)) * stride
  window_context_length = tf.minimum(
      window_start + tf.gather(max_context, example),
      tf.gather(context_length, example)) - window_start
  window_question_length = tf.gather(question_length, example)
  context_offset = window_question_length + 2
  length = context_offset + window_context_length + 1
  seq_len = tf.reduce_max(tf.concat([length, [1]], 0))

  position = tf.range(seq_len)[tf.newaxis, :]
  in_question = (position >= 1) & (position <= column(window_question_length))
  in_context = ((position >= column(context_offset)) &
                (position < column(context_offset + window_context_length)))
  question_index = column(tf.gather(question_start, example)) + position - 1
  context_index = column(tf.gather(context_start, example) + window_start -
                          context_offset) + position
  is_sep = ((position == column(context_offset) - 1) |
            (position == column(length) - 1))
  input_ids = tf.where(
      in_question, gather_or_zero(ids, question_index),
      tf.where(in_context, gather_or_zero(ids, context_index),
               tf.where(is_sep, tokenizer.special_id("[SEP]"),
                        tokenizer.special_id("[PAD]"))))
  input_ids = tf.where(position == 0, tokenizer.special_id("[CLS]"), input_ids)
  attention_mask = position < column(length)
  token_type_ids = (position >= column(context_offset)) & attention_mask
  return GraphWindows(
      input_ids=input_ids,
      attention_mask=tf.cast(attention_mask, tf.int32),
      token_type_ids=tf.cast(token_type_ids, tf.int32),
      example=example,
      context_start=tf.gather(context_start, example) + window_start,
      context_offset=context_offset,
      context_length=window_context_length,
      batch_size=batch_size,
      empty_row=empty_row)
