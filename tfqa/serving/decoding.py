"""The serving graph's span decoding: n-best rules and the SQuAD v2.0 null rule, as answers.decode_predictions."""

from __future__ import annotations

import math

import tensorflow as tf

from tfqa.serving.ops import gather_or_zero
from tfqa.serving.ops import log_softmax_where


def decode(windows, start_logits, end_logits, tokens, context,
            decode_config):
  """Top answer per example, as `answers.decode_predictions` picks it."""
  # Scores are sums in float64, as the Python decoder adds Python floats, so
  # candidates rank identically.
  start_logits = tf.cast(start_logits, tf.float64)
  end_logits = tf.cast(end_logits, tf.float64)
  position = tf.range(tf.shape(start_logits)[1])[tf.newaxis, :]
  first = windows.context_offset[:, tf.newaxis]
  stop = first + windows.context_length[:, tf.newaxis]
  is_context = (position >= first) & (position < stop)
  # Window position -> index in `tokens` of that context token.
  to_token = windows.context_start - windows.context_offset
  if decode_config.span_scoring == "pipeline":
    # answers.window_log_softmax: over [CLS] and the window's context.
    allowed = is_context | (position == 0)
    start_logits = log_softmax_where(start_logits, allowed)
    end_logits = log_softmax_where(end_logits, allowed)
    window_start, window_end, window_score, window_has_span = _best_span(
        start_logits, end_logits, is_context, decode_config)
    window_score = _same_text_totals(
        windows, window_start + to_token, window_end + to_token,
        window_score, window_has_span, tokens, context)
  else:
    window_start, window_end, window_score, window_has_span = _best_n_best(
        start_logits, end_logits, is_context, decode_config)

  example, batch_size = windows.example, windows.batch_size
  num_windows = tf.shape(window_score)[0]
  best_score = tf.math.unsorted_segment_max(window_score, example, batch_size)
  has_span = tf.math.unsorted_segment_max(
      tf.cast(window_has_span, tf.int32), example, batch_size) > 0
  # The first window holding the best score, as a stable sort would keep.
  is_best = window_has_span & tf.equal(window_score,
                                       tf.gather(best_score, example))
  best_window = tf.math.unsorted_segment_min(
      tf.where(is_best, tf.range(num_windows), num_windows), example,
      batch_size)
  null_score = tf.math.unsorted_segment_min(
      start_logits[:, 0] + end_logits[:, 0], example, batch_size)

  no_answer = ~has_span | windows.empty_row
  if decode_config.version_2_with_negative:
    no_answer |= (null_score - best_score >
                  decode_config.null_score_diff_threshold)
    no_answer_score = null_score
  else:
    no_answer_score = tf.zeros_like(null_score)
  score = tf.where(no_answer, no_answer_score, best_score)

  def token_field(field, window_position):
    # tokens.<field> at the chosen window position; -1 for no answer.
    token = gather_or_zero(window_position + to_token, best_window)
    return tf.where(no_answer, -1, gather_or_zero(field, token))

  byte_begin = tf.maximum(token_field(tokens.byte_begin, window_start), 0)
  byte_end = tf.maximum(token_field(tokens.byte_end, window_end), 0)
  return {
      "answer": tf.strings.substr(context, byte_begin, byte_end - byte_begin,
                                  unit="BYTE"),
      "score": tf.cast(score, tf.float32),
      "start_char": token_field(tokens.char_begin, window_start),
      "end_char": token_field(tokens.char_end, window_end),
  }


def _best_n_best(start_logits, end_logits, is_context, decode_config):
  """Per window: best (start, end, score, has_span) among n-best starts/ends.

  As answers.best_spans_in_window, then a stable sort by score.
  """
  neg_inf = tf.constant(-math.inf, tf.float64)
  k = tf.minimum(decode_config.n_best_size, tf.shape(start_logits)[1])
  start_top, start_index = tf.math.top_k(
      tf.where(is_context, start_logits, neg_inf), k)
  end_top, end_index = tf.math.top_k(
      tf.where(is_context, end_logits, neg_inf), k)
  start_ok = tf.gather(is_context, start_index, batch_dims=1)
  end_ok = tf.gather(is_context, end_index, batch_dims=1)
  s = start_index[:, :, tf.newaxis]
  e = end_index[:, tf.newaxis, :]
  valid = ((start_ok[:, :, tf.newaxis] & end_ok[:, tf.newaxis, :]) &
           (s <= e) & (e < s + decode_config.max_answer_length))
  scores = tf.where(valid, start_top[:, :, tf.newaxis] +
                    end_top[:, tf.newaxis, :], neg_inf)
  num_windows = tf.shape(scores)[0]
  scores = tf.reshape(scores, [num_windows, -1])
  # argmax takes the first best pair in (start rank, end rank) order: the
  # order in which the Python decoder lists, then stably sorts, candidates.
  best_pair = tf.argmax(scores, axis=1, output_type=tf.int32)
  window_has_span = tf.reduce_any(tf.reshape(valid, [num_windows, -1]), 1)
  window_score = tf.where(window_has_span, tf.reduce_max(scores, axis=1),
                          neg_inf)
  window_start = tf.gather(start_index, best_pair // k, batch_dims=1)
  window_end = tf.gather(end_index, best_pair % k, batch_dims=1)
  return window_start, window_end, window_score, window_has_span


def _best_span(start_scores, end_scores, is_context, decode_config):
  """Per window: best (start, end, score, has_span) over all valid spans.

  As answers.best_span: scores[w, s, d] is the span from s to s + d; argmax
  takes the first best in (start, end) order.
  """
  neg_inf = tf.constant(-math.inf, tf.float64)
  length = decode_config.max_answer_length
  num_windows = tf.shape(start_scores)[0]
  seq_len = tf.shape(start_scores)[1]
  pad = tf.fill([num_windows, length], neg_inf)
  ends = tf.concat([tf.where(is_context, end_scores, neg_inf), pad], 1)
  shifted = tf.stack([ends[:, d:d + seq_len] for d in range(length)], 2)
  scores = tf.where(is_context, start_scores, neg_inf)[:, :, tf.newaxis] + (
      shifted)
  flat = tf.reshape(scores, [num_windows, -1])
  best = tf.argmax(flat, axis=1, output_type=tf.int32)
  window_score = tf.reduce_max(flat, axis=1)
  window_has_span = window_score > neg_inf
  window_start = best // length
  return (window_start, window_start + best % length, window_score,
          window_has_span)


def _same_text_totals(windows, start_token, end_token, window_score,
                      window_has_span, tokens, context):
  """log of the summed probabilities of each window's text in its example.

  As the transformers pipeline: windows of one example whose best spans
  have the same text, ignoring case, add their probabilities.
  """
  byte_begin = tf.where(window_has_span,
                        gather_or_zero(tokens.byte_begin, start_token), 0)
  byte_end = tf.where(window_has_span,
                      gather_or_zero(tokens.byte_end, end_token), 0)
  text = tf.strings.lower(
      tf.strings.substr(tf.gather(context, windows.example), byte_begin,
                        tf.maximum(byte_end - byte_begin, 0), unit="BYTE"),
      encoding="utf-8")
  same = ((windows.example[:, tf.newaxis] == windows.example[tf.newaxis, :]) &
          (text[:, tf.newaxis] == text[tf.newaxis, :]) &
          window_has_span[tf.newaxis, :])
  neg_inf = tf.constant(-math.inf, tf.float64)
  totals = tf.reduce_logsumexp(
      tf.where(same, window_score[tf.newaxis, :], neg_inf), axis=1)
  return tf.where(window_has_span, totals, neg_inf)
