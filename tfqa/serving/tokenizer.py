"""WordPiece tokenization with character offsets in TensorFlow graph ops, as Hugging Face's BertTokenizerFast."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf
import tensorflow_text as tf_text

from tfqa import errors
from tfqa.layout import fs

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
      raise errors.ArgumentError(
          "do_lower_case", do_lower_case,
          "Expected a bool: True for uncased vocabs, False for cased ones.")
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


def _read_special_ids(vocab_file: str) -> dict[str, int]:
  """Line numbers of the special tokens in a vocab file."""
  if not isinstance(vocab_file, str) or not fs.isfile(vocab_file):
    raise errors.ArgumentError(
        "vocab_file", vocab_file,
        "Expected the path of an existing WordPiece vocab.txt (one token per "
        "line). Pass the model's vocab.")
  ids = {}
  with fs.open_file(vocab_file, "rb") as f:
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
