"""Raw-text question answering in TensorFlow graph ops, for TF Serving."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import tensorflow as tf
import tensorflow_text as tf_text

from tfqa import config as config_lib
from tfqa import exportdir

# HF's WordPiece gives one [UNK] to a word of more than this many chars.
MAX_CHARS_PER_WORD = 100
# tensorflow_text counts word length in bytes; 4 UTF-8 bytes per char at most,
# so this bound never cuts a word of MAX_CHARS_PER_WORD chars.
_MAX_BYTES_PER_WORD = 4 * MAX_CHARS_PER_WORD
# Stands in for a word of too many chars: longer than _MAX_BYTES_PER_WORD, so
# the WordPiece op maps it to [UNK] without looking at it.
_TOO_LONG_WORD = "x" * (_MAX_BYTES_PER_WORD + 1)

# Special tokens every BERT vocab used here must hold.
_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")

# Code points that HF's BertNormalizer turns into a space (\t \n \r and the
# Unicode White_Space chars that are not control chars).
_WHITESPACE = (0x09, 0x0A, 0x0D, 0x20, 0xA0, 0x1680, *range(0x2000, 0x200B),
               0x2028, 0x2029, 0x202F, 0x205F, 0x3000)
# Chars HF's BertNormalizer drops: NUL, U+FFFD and these "other" categories
# (\t, \n and \r excepted); unassigned code points are kept, as in HF.
_CONTROL_REGEX = r"\p{Cc}|\p{Cf}|\p{Co}|\p{Cs}"
# CJK ideographs that HF isolates as single-char words (its is_chinese_char;
# tensorflow_text's BasicTokenizer uses 0x2B820 instead of 0x2B920).
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
               (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF),
               (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
# HF's BertPreTokenizer punctuation: ASCII punctuation and Unicode P*.
_PUNCT_REGEX = r"[!-/]|[:-@]|[\[-`]|[{-~]|\p{P}"
_CJK_REGEX = "|".join(rf"[\x{{{lo:X}}}-\x{{{hi:X}}}]" for lo, hi in _CJK_RANGES)
# Words are split at spaces (dropped) and around punctuation and CJK (kept).
_SPLIT_REGEX = rf"\s+|{_PUNCT_REGEX}|{_CJK_REGEX}"
_KEEP_REGEX = rf"{_PUNCT_REGEX}|{_CJK_REGEX}"


class TokenizedText(NamedTuple):
  """Word pieces of a batch of strings with their offsets in those strings.

  Every field but `row_splits` is an int32 [num_pieces] tensor holding the
  pieces of all strings, string after string; the pieces of string i are
  `[row_splits[i], row_splits[i + 1])`. (Flat tensors keep the serving graph
  small: ragged broadcasting and slicing add thousands of nodes.)

  Attributes:
    ids: word piece ids.
    char_begin: first code point (Python str index) of each piece.
    char_end: code point after the piece's last one (exclusive end).
    byte_begin: first UTF-8 byte of each piece.
    byte_end: byte after the piece's last one (exclusive end).
    row_splits: int32 [batch + 1].
  """

  ids: tf.Tensor
  char_begin: tf.Tensor
  char_end: tf.Tensor
  byte_begin: tf.Tensor
  byte_end: tf.Tensor
  row_splits: tf.Tensor

  def ragged(self, field: str) -> tf.RaggedTensor:
    """One field as a [batch, (pieces)] `RaggedTensor`."""
    return tf.RaggedTensor.from_row_splits(getattr(self, field),
                                           self.row_splits, validate=False)


class GraphBertTokenizer(tf.Module):
  """BERT WordPiece tokenization in graph ops, matching HF BertTokenizerFast.

  `tensorflow_text.BertTokenizer(lower_case=True)` reports offsets into its
  case-folded, NFKC/NFD-normalized copy of the input, not into the input, and
  its normalization differs from HF's (NFKC folds "ﬁ", "²", "…", full-width
  letters; control chars become spaces instead of being dropped; "ß" folds to
  "ss"). This tokenizer therefore normalizes each code point on its own the
  way HF's BertNormalizer does (drop control chars, map whitespace to a space,
  and if `do_lower_case` NFD, strip Mn marks, lower-case), remembers which
  input code point every normalized byte came from, and then runs the ops
  `tensorflow_text.BertTokenizer` is built from (`regex_split_with_offsets`
  and `WordpieceTokenizer`) with HF's split rules (its CJK ranges, and its
  100-char rather than 100-byte limit for a word). Ids and offsets then equal
  HF's, with one known exception: HF reads special tokens written in the
  text ("[MASK]", "[SEP]") as those tokens, this tokenizer as plain text.
  (Chars whose Unicode data differ between ICU/RE2 and Rust's tables may
  differ too.)
  """

  def __init__(self, vocab_file: str, *, do_lower_case: bool, name=None):
    """Builds the vocab table from `vocab_file`, kept as a SavedModel asset.

    Args:
      vocab_file: a WordPiece `vocab.txt`, one token per line.
      do_lower_case: whether to strip accents and lower-case (uncased BERT).
      name: the module name.

    Raises:
      ValueError: the vocab file is missing or lacks a special token.
    """
    super().__init__(name=name)
    if not isinstance(do_lower_case, bool):
      raise ValueError(
          f"Invalid value for argument `do_lower_case`. Received: "
          f"do_lower_case={do_lower_case!r}. Expected a bool: True for "
          f"uncased vocabs, False for cased ones.")
    self._special_ids = _read_special_ids(vocab_file)
    self._do_lower_case = do_lower_case
    self.vocab_asset = tf.saved_model.Asset(vocab_file)
    self._vocab_table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            self.vocab_asset, key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER),
        default_value=-1,
        # A shared table is found by a name derived from the file name,
        # which an Asset hides: two tokenizers of different vocabs would
        # share the first one's table.
        experimental_is_anonymous=True)
    self._wordpiece = tf_text.WordpieceTokenizer(
        self._vocab_table, token_out_type=tf.int64,
        max_bytes_per_word=_MAX_BYTES_PER_WORD, unknown_token="[UNK]")

  def special_id(self, token: str) -> int:
    """The id of a special token ("[PAD]", "[UNK]", "[CLS]" or "[SEP]")."""
    return self._special_ids[token]

  def tokenize(self, texts: tf.Tensor) -> TokenizedText:
    """Tokenizes a batch of UTF-8 strings into word pieces with offsets.

    Args:
      texts: string [batch]; invalid UTF-8 is read with U+FFFD replacements
        (which are then dropped, as HF drops U+FFFD).

    Returns:
      The word pieces and their code point and byte offsets in `texts`.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    num_texts = tf.shape(texts, out_type=tf.int64)[0]
    codepoints, byte_starts = tf.strings.unicode_decode_with_offsets(
        texts, "UTF-8", errors="replace")
    char_splits = codepoints.row_splits
    char_rows = codepoints.value_rowids()
    flat_cp = codepoints.flat_values
    byte_starts = byte_starts.flat_values
    normalized = self._normalize_chars(flat_cp)
    norm_len = tf.cast(tf.strings.length(normalized), tf.int64)
    # End byte of each char's normalized form in the concatenation of all
    # texts' normalized strings; text i starts there at norm_base[i].
    norm_end = tf.cumsum(norm_len)
    norm_base = tf.gather(tf.concat([[0], norm_end], 0), char_splits[:-1])
    normalized_texts = tf.strings.unsorted_segment_join(normalized, char_rows,
                                                        num_texts)

    words, word_begin, word_end = tf_text.regex_split_with_offsets(
        normalized_texts, _SPLIT_REGEX, _KEEP_REGEX)
    word_rows = words.value_rowids()
    words = words.flat_values
    word_begin, word_end = word_begin.flat_values, word_end.flat_values
    too_long = (tf.strings.length(words, unit="UTF8_CHAR") >
                MAX_CHARS_PER_WORD)
    pieces, piece_begin, piece_end = self._wordpiece.tokenize_with_offsets(
        tf.where(too_long, _TOO_LONG_WORD, words))
    piece_word = pieces.value_rowids()
    word_length = tf.gather(word_end - word_begin, piece_word)
    piece_end = tf.where(tf.gather(too_long, piece_word), word_length,
                         tf.minimum(piece_end.flat_values, word_length))
    rows = tf.gather(word_rows, piece_word)
    # Pieces are in text order, so text i's are those before row i + 1.
    row_splits = tf.searchsorted(rows, tf.range(num_texts + 1), side="left",
                                 out_type=tf.int32)
    base = tf.gather(word_begin, piece_word) + tf.gather(norm_base, rows)
    # A piece starts in the first char whose normalized bytes reach past its
    # first byte and ends with the char holding its last byte, so chars that
    # normalize to nothing (accents, control chars) attach to the char before.
    first_char = tf.searchsorted(norm_end, piece_begin.flat_values + base,
                                 side="right", out_type=tf.int64)
    last_char = tf.searchsorted(norm_end, piece_end + base, side="left",
                                out_type=tf.int64)
    row_first_char = tf.gather(char_splits, rows)
    # Each char's bytes end where the next char of its text starts.
    is_last_in_row = tf.equal(
        tf.range(tf.size(flat_cp, out_type=tf.int64)) + 1,
        tf.gather(char_splits[1:], char_rows))
    char_byte_end = tf.where(
        is_last_in_row,
        tf.gather(tf.cast(tf.strings.length(texts), tf.int64), char_rows),
        tf.concat([byte_starts[1:], [0]], 0)[:tf.size(byte_starts)])
    return TokenizedText(
        ids=tf.cast(pieces.flat_values, tf.int32),
        char_begin=tf.cast(first_char - row_first_char, tf.int32),
        char_end=tf.cast(last_char + 1 - row_first_char, tf.int32),
        byte_begin=tf.cast(tf.gather(byte_starts, first_char), tf.int32),
        byte_end=tf.cast(tf.gather(char_byte_end, last_char), tf.int32),
        row_splits=row_splits)

  def _normalize_chars(self, codepoints: tf.Tensor) -> tf.Tensor:
    """HF BertNormalizer applied to each code point alone: string [chars]."""
    chars = tf.strings.unicode_encode(tf.expand_dims(codepoints, 1), "UTF-8")
    normalized = chars
    if self._do_lower_case:
      normalized = tf_text.normalize_utf8(normalized, "NFD")
      normalized = tf.strings.regex_replace(normalized, r"\p{Mn}", "")
      # One char at a time, like HF: no context-dependent final sigma.
      normalized = tf.strings.lower(normalized, encoding="utf-8")
    is_whitespace = tf.reduce_any(
        tf.equal(tf.expand_dims(codepoints, 1), list(_WHITESPACE)), axis=1)
    is_control = ((tf.strings.regex_full_match(chars, _CONTROL_REGEX) &
                   ~is_whitespace) | tf.equal(codepoints, 0) |
                  tf.equal(codepoints, 0xFFFD))
    return tf.where(is_control, "", tf.where(is_whitespace, " ", normalized))


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
      raise ValueError(
          f"Invalid value for argument `max_windows_per_batch`. Received: "
          f"max_windows_per_batch={max_windows_per_batch!r}. Expected None "
          f"(all windows in one call) or a positive integer.")
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
    windows = _build_windows(
        tokens.ids,
        question_start=starts[:batch_size],
        question_length=stops[:batch_size] - starts[:batch_size],
        context_start=starts[batch_size:],
        context_length=stops[batch_size:] - starts[batch_size:],
        feature_config=self._feature_config, tokenizer=self.tokenizer)
    start_logits, end_logits = self._window_logits(
        windows.input_ids, windows.attention_mask, windows.token_type_ids)
    return _decode(windows, start_logits, end_logits, tokens, context,
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


class _Windows(NamedTuple):
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


def _build_windows(ids, *, question_start, question_length, context_start,
                   context_length, feature_config, tokenizer) -> _Windows:
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
  max_context = feature_config.max_seq_length - question_length - 3
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
  in_question = (position >= 1) & (position <= _column(window_question_length))
  in_context = ((position >= _column(context_offset)) &
                (position < _column(context_offset + window_context_length)))
  question_index = _column(tf.gather(question_start, example)) + position - 1
  context_index = _column(tf.gather(context_start, example) + window_start -
                          context_offset) + position
  is_sep = ((position == _column(context_offset) - 1) |
            (position == _column(length) - 1))
  input_ids = tf.where(
      in_question, _gather_or_zero(ids, question_index),
      tf.where(in_context, _gather_or_zero(ids, context_index),
               tf.where(is_sep, tokenizer.special_id("[SEP]"),
                        tokenizer.special_id("[PAD]"))))
  input_ids = tf.where(position == 0, tokenizer.special_id("[CLS]"), input_ids)
  attention_mask = position < _column(length)
  token_type_ids = (position >= _column(context_offset)) & attention_mask
  return _Windows(
      input_ids=input_ids,
      attention_mask=tf.cast(attention_mask, tf.int32),
      token_type_ids=tf.cast(token_type_ids, tf.int32),
      example=example,
      context_start=tf.gather(context_start, example) + window_start,
      context_offset=context_offset,
      context_length=window_context_length,
      batch_size=batch_size,
      empty_row=empty_row)


def _decode(windows, start_logits, end_logits, tokens, context,
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
    start_logits = _log_softmax_where(start_logits, allowed)
    end_logits = _log_softmax_where(end_logits, allowed)
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
    token = _gather_or_zero(window_position + to_token, best_window)
    return tf.where(no_answer, -1, _gather_or_zero(field, token))

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
                        _gather_or_zero(tokens.byte_begin, start_token), 0)
  byte_end = tf.where(window_has_span,
                      _gather_or_zero(tokens.byte_end, end_token), 0)
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


def _log_softmax_where(logits: tf.Tensor, allowed: tf.Tensor) -> tf.Tensor:
  """Row-wise log-softmax over the `allowed` positions; -inf elsewhere."""
  values = tf.where(allowed, logits, tf.constant(-math.inf, logits.dtype))
  return values - tf.reduce_logsumexp(values, axis=1, keepdims=True)


def _column(x: tf.Tensor) -> tf.Tensor:
  """[n] -> [n, 1], to compare per-window values with positions."""
  return x[:, tf.newaxis]


def _gather_or_zero(values: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
  """values[indices] where indices are in range, else 0 (no out-of-range)."""
  padded = tf.concat([values, tf.zeros([1], values.dtype)], 0)
  inside = (indices >= 0) & (indices < tf.size(values))
  return tf.gather(padded, tf.where(inside, indices, tf.size(values)))


def _read_special_ids(vocab_file: str) -> dict[str, int]:
  """Line numbers of the special tokens in a vocab file."""
  if not isinstance(vocab_file, str) or not tf.io.gfile.exists(vocab_file):
    raise ValueError(
        f"Invalid value for argument `vocab_file`. Received: "
        f"vocab_file={vocab_file!r}. Expected the path of an existing "
        f"WordPiece vocab.txt (one token per line). Pass the model's vocab.")
  ids = {}
  with tf.io.gfile.GFile(vocab_file, "rb") as f:
    for index, line in enumerate(f):
      token = line.decode("utf-8").rstrip("\n")
      if token in _SPECIAL_TOKENS and token not in ids:
        ids[token] = index
  missing = [t for t in _SPECIAL_TOKENS if t not in ids]
  if missing:
    raise ValueError(
        f"Invalid vocab file {vocab_file!r}. Received: a vocab without "
        f"{missing}. Expected a BERT vocab holding {list(_SPECIAL_TOKENS)}. "
        f"Pass the vocab.txt the model was trained with.")
  return ids


def custom_ops_used(saved_model_dir: str) -> list[str]:
  """Op types in a SavedModel that core TensorFlow does not register.

  Looks at every node of the SavedModel's graphs and of all functions in their
  function libraries; an op counts as core when `tf.raw_ops` has it. Calls of
  library functions are not ops and are skipped.

  Args:
    saved_model_dir: a directory written by `tf.saved_model.save`.

  Returns:
    The sorted op type names (e.g. tensorflow_text's), for the export
    manifest: the servers loading the model must register them.

  Raises:
    ValueError: the directory holds no saved_model.pb.
  """
  saved_model = exportdir.saved_model_proto(saved_model_dir)
  op_types, function_names = set(), set()
  for meta_graph in saved_model.meta_graphs:
    graph = meta_graph.graph_def
    op_types.update(node.op for node in graph.node)
    for function in graph.library.function:
      function_names.add(function.signature.name)
      op_types.update(node.op for node in function.node_def)
  core = set(dir(tf.raw_ops))
  return sorted(op for op in op_types - function_names if op not in core)
