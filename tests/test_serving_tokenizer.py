"""Tests for tfqa.serving.tokenizer: the graph's BERT tokenizer gives HF's ids and offsets into the input string."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from tfqa import serving
from tfqa.data import windows


# Strings on which HF and the graph tokenizer agree: accents, CJK, emoji,
# control and format chars, combining marks, NFKC-only forms, casing.
TOKENIZER_TEXTS = (
    "Zoë went to São Paulo. Next", "東京 is big", "hi 😀 there", "hi😀",
    "a\x00b c\u200bd e", "cafe\u0301 x", "\u0301abc", "ﬁne km² 1…2 Ｐａｒｉｓ",
    "İstanbul ΣΑΣ", "a\u00a0b\u3000c", "한국어 text", "straße", "", "   ",
    "\x0b\x0c\x85a\tb\nc\rd", "don't stop-me (now)!", "Ⅻ ½ ™ ﬀ",
    "x" * 101 + " y", "é" * 60 + " y", "\ufffd\ufeffz", "ab\u0378",
    "a\ue000b", "x\U0002B820y", "x\U0002B920y", "\u2066x\u2069 \u180e ΐ ǅ",
)


@pytest.fixture(scope="module")
def graph_tokenizer(bert_vocab_file):
  return serving.GraphBertTokenizer(bert_vocab_file, do_lower_case=True)


def _graph_tokens(graph_tokenizer, texts):
  out = graph_tokenizer.tokenize(tf.constant(texts, tf.string))
  rows = {field: out.ragged(field).to_list()
          for field in ("ids", "char_begin", "char_end", "byte_begin",
                        "byte_end")}
  return [(rows["ids"][i],
           list(zip(rows["char_begin"][i], rows["char_end"][i])),
           list(zip(rows["byte_begin"][i], rows["byte_end"][i])))
          for i in range(len(texts))]


def _hf_tokens(tokenizer, text):
  encoded = tokenizer(text, add_special_tokens=False,
                      return_offsets_mapping=True)
  return encoded["input_ids"], [tuple(o) for o in encoded["offset_mapping"]]


def _assert_same_tokens(graph_tokenizer, hf_tokenizer, texts):
  for text, (ids, chars, byte_spans) in zip(
      texts, _graph_tokens(graph_tokenizer, texts)):
    assert (ids, chars) == _hf_tokens(hf_tokenizer, text), repr(text)
    raw = text.encode("utf-8")
    assert [raw[b:e].decode("utf-8") for b, e in byte_spans] == [
        text[b:e] for b, e in chars], repr(text)


def test_tokenizer_matches_hf_on_unicode_edge_cases(graph_tokenizer,
                                                    bert_tokenizer):
  _assert_same_tokens(graph_tokenizer, bert_tokenizer, list(TOKENIZER_TEXTS))


def _random_texts(seed, count):
  alphabet = list("abcdefghij ABCDEFG .,;!?'\"()-0123456789") + [
      "é", "É", "ü", "ß", "ç", "\u0301", "東", "京", "😀", "\u200b", "\x00",
      "\t", "\n", "\u00a0", "\u3000", "…", "²", "ﬁ", "Σ", "한", "[", "]"]
  rng = np.random.default_rng(seed)
  return ["".join(rng.choice(alphabet, size=rng.integers(0, 40)))
          for _ in range(count)]


def test_tokenizer_matches_hf_on_random_mixed_text(graph_tokenizer,
                                                   bert_tokenizer):
  _assert_same_tokens(graph_tokenizer, bert_tokenizer, _random_texts(0, 300))


def test_cased_tokenizer_matches_hf(vocab_file):
  hf_cased = windows.load_tokenizer(vocab_file, do_lower_case=False)
  cased = serving.GraphBertTokenizer(vocab_file, do_lower_case=False)
  _assert_same_tokens(cased, hf_cased,
                      list(TOKENIZER_TEXTS) + _random_texts(1, 100))


def test_known_differences_from_hf(graph_tokenizer, bert_tokenizer):
  # HF matches special tokens written in the text; the graph reads them as
  # text, which also keeps users from injecting [SEP] into a window.
  assert bert_tokenizer.convert_ids_to_tokens(
      _hf_tokens(bert_tokenizer, "[MASK] x")[0]) == ["[MASK]", "x"]
  (ids, chars, _), = _graph_tokens(graph_tokenizer, ["[MASK] x"])
  assert bert_tokenizer.convert_ids_to_tokens(ids) == ["[", "mask", "]", "x"]
  assert chars == [(0, 1), (1, 5), (5, 6), (7, 8)]


def test_stock_bert_tokenizer_offsets_do_not_index_the_input(
    bert_vocab_file, bert_tokenizer):
  # Why the graph does not call tensorflow_text.BertTokenizer(lower_case=True)
  # directly: its offsets point into its normalized copy of the text, and it
  # normalizes with NFKC and turns control chars into spaces.
  stock = tf_text.BertTokenizer(bert_vocab_file, lower_case=True,
                                token_out_type=tf.int64)
  text = "Zoë went to São Paulo"
  ids, begin, end = stock.tokenize_with_offsets([text])
  raw = text.encode("utf-8")
  pieces = [raw[b:e] for b, e in zip(begin.merge_dims(1, 2)[0].numpy(),
                                     end.merge_dims(1, 2)[0].numpy())]
  assert pieces[-1] == b"o Pau"  # "paulo", two bytes early.
  stock_ids = stock.tokenize(["ﬁ km² a\x00b"]).merge_dims(1, 2)[0]
  assert bert_tokenizer.convert_ids_to_tokens(stock_ids.numpy().tolist()) == [
      "fi", "km", "##2", "a", "b"]
  assert bert_tokenizer.convert_ids_to_tokens(
      _hf_tokens(bert_tokenizer, "ﬁ km² a\x00b")[0]) == ["ﬁ", "km²", "ab"]


def test_vocab_without_special_tokens_is_rejected(tmp_path):
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"without \['\[CLS\]', '\[SEP\]'\]"):
    serving.GraphBertTokenizer(str(vocab), do_lower_case=True)


def test_tokenizers_of_different_vocabs_live_side_by_side(vocab_file,
                                                          bert_vocab_file,
                                                          tokenizer,
                                                          bert_tokenizer):
  text = "the lighthouse keeper"
  tiny = serving.GraphBertTokenizer(vocab_file, do_lower_case=True)
  bert = serving.GraphBertTokenizer(bert_vocab_file, do_lower_case=True)
  for graph_tokenizer, hf_tokenizer in ((tiny, tokenizer), (bert,
                                                           bert_tokenizer)):
    ids = graph_tokenizer.tokenize(tf.constant([text])).ragged("ids")
    assert ids.to_list()[0] == hf_tokenizer(
        text, add_special_tokens=False)["input_ids"]
