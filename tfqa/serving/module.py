"""QAServingModule: raw question/context strings in, answers out, all in TF ops (the SavedModel's serving_default)."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from tfqa import config as config_lib
from tfqa import errors
from tfqa.serving.decoding import decode
from tfqa.serving.tokenizer import GraphBertTokenizer
from tfqa.serving.windows import build_windows


class QAServingModule(tf.Module):
  """Answers raw question/context strings with a QA model, all in TF ops.

  Mirrors `features.build_features` + `answers.decode_predictions` for the top
  answer: the question is cut to `max_query_length` word pieces, the context
  is cut into windows starting every `doc_stride` context tokens, all windows
  of the batch run through `logits_fn` as one batch padded to the longest
  window, and each example's best span over its windows is decoded with the
  n-best rules (and the SQuAD v2.0 null rule when configured).
  """

  def __init__(self, *, logits_fn: Callable, vocab_file: str,
               do_lower_case: bool,
               feature_config: config_lib.FeatureConfig,
               decode_config: config_lib.DecodeConfig,
               max_windows_per_batch: int | None = None, name=None):
    """Builds the module.

    Args:
      logits_fn: `(input_ids, attention_mask, token_type_ids) -> (start_logits,
        end_logits)`, int32 [n, seq] inputs and float32 [n, seq] outputs; a
        trackable (a Keras model or `tf.Module`) so it is saved with this one.
        It is traced without AutoGraph (Keras and HF TF models need none).
      vocab_file: the model's WordPiece `vocab.txt` (copied into the
        SavedModel's assets).
      do_lower_case: whether the vocab is uncased.
      feature_config: window sizes, as used in training.
      decode_config: n-best size, answer length and v2.0 null handling.
      max_windows_per_batch: when set, `logits_fn` sees at most this many
        windows at a time, bounding memory for long contexts.
      name: the module name.

    Raises:
      ValueError: an argument is invalid.
    """
    super().__init__(name=name)
    if not callable(logits_fn):
      raise ValueError(
          f"Invalid value for argument `logits_fn`. Received: "
          f"logits_fn={logits_fn!r}. Expected a callable (input_ids, "
          f"attention_mask, token_type_ids) -> (start_logits, end_logits), "
          f"e.g. a Keras model wrapper.")
    if not isinstance(feature_config, config_lib.FeatureConfig):
      raise ValueError(
          f"Invalid value for argument `feature_config`. Received: "
          f"{type(feature_config).__name__}. Expected a "
          f"tfqa.config.FeatureConfig.")
    if not isinstance(decode_config, config_lib.DecodeConfig):
      raise ValueError(
          f"Invalid value for argument `decode_config`. Received: "
          f"{type(decode_config).__name__}. Expected a "
          f"tfqa.config.DecodeConfig.")
    if max_windows_per_batch is not None and (
        not isinstance(max_windows_per_batch, int) or
        isinstance(max_windows_per_batch, bool) or max_windows_per_batch <= 0):
      raise errors.ArgumentError(
          "max_windows_per_batch", max_windows_per_batch,
          "Expected None (all windows in one call) or a positive integer.")
    self.logits_fn = logits_fn
    self.tokenizer = GraphBertTokenizer(vocab_file,
                                        do_lower_case=do_lower_case)
    self._feature_config = feature_config
    self._decode_config = decode_config
    self._max_windows_per_batch = max_windows_per_batch

  # No AutoGraph: the code has no tensor-dependent Python control flow, and
  # converting the tensorflow_text functions alone costs seconds per trace.
  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name="question"),
      tf.TensorSpec([None], tf.string, name="context"),
  ])
  def answer(self, question, context):
    """Answers each question from its context.

    Args:
      question: string [batch].
      context: string [batch].

    Returns:
      A dict of [batch] tensors: "answer" (the context substring, "" for no
      answer), "score" (float32 start+end logit of the answer, the null score
      when v2.0 predicts no answer, 0 when v1.1 has none), "start_char" and
      "end_char" (int32 code point offsets into the context, end exclusive;
      -1 for no answer). A row whose question or context has no word pieces
      gets no answer.
    """
    tf.debugging.assert_equal(
        tf.shape(question), tf.shape(context),
        message="`question` and `context` must have the same length")
    batch_size = tf.shape(question)[0]
    tokens = self.tokenizer.tokenize(tf.concat([question, context], 0))
    # Rows [0, batch) are the questions, [batch, 2 batch) the contexts.
    starts, stops = tokens.row_splits[:-1], tokens.row_splits[1:]
    windows = build_windows(
        tokens.ids,
        question_start=starts[:batch_size],
        question_length=stops[:batch_size] - starts[:batch_size],
        context_start=starts[batch_size:],
        context_length=stops[batch_size:] - starts[batch_size:],
        feature_config=self._feature_config, tokenizer=self.tokenizer)
    start_logits, end_logits = self._window_logits(
        windows.input_ids, windows.attention_mask, windows.token_type_ids)
    return decode(windows, start_logits, end_logits, tokens, context,
                   self._decode_config)

  # No AutoGraph either, so logits_fn is traced as in `answer`.
  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, None], tf.int32, name="input_ids"),
      tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
      tf.TensorSpec([None, None], tf.int32, name="token_type_ids"),
  ])
  def predict_logits(self, input_ids, attention_mask, token_type_ids):
    """The model's start/end logits for ready-made windows.

    Args:
      input_ids: int32 [n, seq].
      attention_mask: int32 [n, seq].
      token_type_ids: int32 [n, seq].

    Returns:
      {"start_logits", "end_logits"}: float32 [n, seq].
    """
    start_logits, end_logits = self.logits_fn(input_ids, attention_mask,
                                              token_type_ids)
    return {"start_logits": tf.cast(start_logits, tf.float32),
            "end_logits": tf.cast(end_logits, tf.float32)}

  def _window_logits(self, input_ids, attention_mask, token_type_ids):
    """Runs `logits_fn` over all windows, in length-sorted chunks if set.

    With `max_windows_per_batch`, windows are sorted by length and each chunk
    is cut to its own longest window: a request mixing short and long
    contexts then does not pad every window to the longest one (on CPUs the
    padded positions cost as much as real ones). Positions past a chunk's
    width get logit 0; decoding never reads them (they are not context).
    """
    num_windows = tf.shape(input_ids)[0]
    seq_len = tf.shape(input_ids)[1]

    def call(ids, mask, types):
      start, end = self.logits_fn(ids, mask, types)
      return tf.cast(start, tf.float32), tf.cast(end, tf.float32)

    def run_all():
      if self._max_windows_per_batch is None:
        return call(input_ids, attention_mask, token_type_ids)
      return self._sorted_chunk_logits(call, input_ids, attention_mask,
                                       token_type_ids)

    def none():
      empty = tf.zeros([0, seq_len], tf.float32)
      return empty, empty

    start_logits, end_logits = tf.cond(num_windows > 0, run_all, none)
    shape = tf.shape(input_ids)
    return tf.reshape(start_logits, shape), tf.reshape(end_logits, shape)

  def _sorted_chunk_logits(self, call, input_ids, attention_mask,
                           token_type_ids):
    """`call` on chunks of length-sorted windows, in the original order."""
    num_windows = tf.shape(input_ids)[0]
    seq_len = tf.shape(input_ids)[1]
    size = self._max_windows_per_batch
    lengths = tf.reduce_sum(attention_mask, axis=1)
    order = tf.argsort(lengths, stable=True)
    ids, mask, types = (tf.gather(x, order) for x in
                        (input_ids, attention_mask, token_type_ids))
    sorted_lengths = tf.gather(lengths, order)
    num_chunks = (num_windows + size - 1) // size
    arrays = [tf.TensorArray(tf.float32, size=num_chunks, infer_shape=False,
                             element_shape=tf.TensorShape([None, None]))
              for _ in range(2)]

    def body(i, starts, ends):
      lo = i * size
      hi = tf.minimum(lo + size, num_windows)
      width = sorted_lengths[hi - 1]  # The chunk's longest window.
      start, end = call(ids[lo:hi, :width], mask[lo:hi, :width],
                        types[lo:hi, :width])
      padding = [[0, 0], [0, seq_len - width]]
      return (i + 1, starts.write(i, tf.pad(start, padding)),
              ends.write(i, tf.pad(end, padding)))

    _, starts, ends = tf.while_loop(lambda i, *_: i < num_chunks, body,
                                    (tf.constant(0), *arrays))
    unsort = tf.math.invert_permutation(order)
    return (tf.gather(starts.concat(), unsort),
            tf.gather(ends.concat(), unsort))
