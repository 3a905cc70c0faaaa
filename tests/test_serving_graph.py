"""Tests for tfqa.serving: tokenization, windows, decoding, the serving module, SavedModel introspection."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from tfqa import answers
from tfqa import config
from tfqa import data
from tfqa import features
from tfqa import serving
from tfqa.serving import windows as serving_windows

from conftest import tiny_bert_config

# Small windows so that a paragraph spans many of them.
FEATURES = config.FeatureConfig(max_seq_length=32, doc_stride=8,
                                max_query_length=8)
DECODE = config.DecodeConfig(n_best_size=5, max_answer_length=6)

_LONG_CONTEXT = (
    "The lighthouse keeper of the river town was born in 1850. He built a "
    "small boat, sailed down the river to Paris, and sold bread in the "
    "capital of France for many years. When the war came, the town lost "
    "half of its people; the keeper stayed, and kept the light burning "
    "every night until 1901. Today the lighthouse is a museum: visitors "
    "climb its 120 steps, read the keeper's diary and eat bread from the "
    "bakery he founded.")

# (question, context) pairs tokenized identically by HF and the graph.
PAIRS = (
    ("Who built the lighthouse?",
     "The lighthouse was built in 1850 by John Smith, a keeper."),
    ("Where does Zoë live?", "Zoë lives in São Paulo, près de l'océan; Ça va?"),
    ("東京はどこですか?", "東京は日本の首都です。 Tokyo (東京) is the capital."),
    ("What's the U.S.A.?",
     "The U.S.A. -- \"United States\" -- e.g. [a country]! Isn't it?"),
    ("what emoji?", "I love 🍕 pizza 😀 and ice-cream 🍦."),
    ("Long question " + "with many many words " * 5, "short context here."),
    ("What happened in the long story?", _LONG_CONTEXT),
    ("", "Context without a question."),
    ("Question without context?", ""),
    ("", ""),
    ("   ", "\t\n"),
    ("control chars?", "cafe\u0301 at\u200bthe corner\x00 with 1…2 km²"),
    ("Ｆｕｌｌ width?", "ﬁne straße İstanbul ΣΑΣ 한국어 a\u00a0b\u3000c"),
)
# Rows whose question has no word pieces: the graph answers nothing there.
_EMPTY_QUESTION = {7, 9, 10}

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


class LookupLogits(tf.Module):
  """A deterministic stand-in for a QA model: per-token lookups, no context.

  start/end logit = table[token] + type_table[token type] + position_table
  [position]; padding does not change a window's logits, so the Python
  reference may run windows unpadded.
  """

  def __init__(self, vocab_size, seed=0, boost=None):
    super().__init__()
    rng = np.random.default_rng(seed)
    table = rng.normal(size=[vocab_size, 2]).astype(np.float32)
    for token_id, column, value in boost or ():
      table[token_id, column] = value
    self.table = tf.Variable(table)
    self.type_table = tf.Variable(rng.normal(size=[2, 2]).astype(np.float32))
    self.position_table = tf.Variable(
        rng.normal(size=[512, 2]).astype(np.float32) * 0.5)

  def __call__(self, input_ids, attention_mask, token_type_ids):
    del attention_mask  # Per-token logits ignore padding.
    logits = (tf.gather(self.table, input_ids) +
              tf.gather(self.type_table, token_type_ids) +
              self.position_table[:tf.shape(input_ids)[1]])
    return logits[..., 0], logits[..., 1]


def _vocab_size(vocab_file):
  with open(vocab_file, encoding="utf-8") as f:
    return sum(1 for _ in f)


def _module(vocab_file, decode_config=DECODE, **kwargs):
  return serving.QAServingModule(
      logits_fn=kwargs.pop("logits_fn", None) or
      LookupLogits(_vocab_size(vocab_file)),
      vocab_file=vocab_file, do_lower_case=kwargs.pop("do_lower_case", True),
      feature_config=kwargs.pop("feature_config", FEATURES),
      decode_config=decode_config, **kwargs)


def _answer(module, pairs):
  out = module.answer(tf.constant([q for q, _ in pairs], tf.string),
                      tf.constant([c for _, c in pairs], tf.string))
  return {
      "answer": [a.decode("utf-8") for a in out["answer"].numpy()],
      "score": out["score"].numpy(),
      "start_char": out["start_char"].numpy().tolist(),
      "end_char": out["end_char"].numpy().tolist(),
  }


def _examples(pairs):
  return [data.SquadExample(id=str(i), title="", question=q, context=c,
                            answer_texts=(), answer_starts=())
          for i, (q, c) in enumerate(pairs)]


def _reference(pairs, tokenizer, logits_fn, decode_config=DECODE):
  """features.build_features + logits_fn per window + decode_predictions."""
  examples = _examples(pairs)
  built = features.build_features(examples, tokenizer, FEATURES)
  starts, ends = [], []
  for ids, types in zip(built.input_ids, built.token_type_ids):
    start, end = logits_fn(tf.constant(ids[None]),
                           tf.ones([1, len(ids)], tf.int32),
                           tf.constant(types[None]))
    starts.append(start.numpy()[0])
    ends.append(end.numpy()[0])
  predictions = answers.decode_predictions(examples, built, starts, ends,
                                           decode_config)
  return [predictions.by_id[e.id] for e in examples], built


def _assert_matches_reference(got, expected, decode_config, empty_rows=()):
  for row, prediction in enumerate(expected):
    if row in empty_rows:
      # No question pieces: the graph answers nothing, where the Python
      # decoder would still pick a span.
      want = ("", -1, -1)
      want_score = (got["score"][row] if decode_config.version_2_with_negative
                    else 0.0)
    else:
      want = (prediction.text, prediction.start_char, prediction.end_char)
      want_score = prediction.score
    assert (got["answer"][row], got["start_char"][row],
            got["end_char"][row]) == want, f"row {row}"
    np.testing.assert_allclose(got["score"][row], want_score, rtol=1e-6,
                               err_msg=f"row {row}")


@pytest.fixture(scope="module")
def bert_vocab_file(bert_tokenizer, tmp_path_factory):
  directory = tmp_path_factory.mktemp("bert_vocab")
  return bert_tokenizer.save_vocabulary(str(directory))[0]


@pytest.fixture(scope="module")
def bert_module(bert_vocab_file):
  return _module(bert_vocab_file)


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
  hf_cased = features.load_tokenizer(vocab_file, do_lower_case=False)
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


def test_windows_match_build_features(vocab_file, tokenizer):
  pairs = [("what is the capital of the city of paris", "paris. " * 30),
           ("who?", "the town"), ("", "bread"), ("who?", "")]
  graph_tokenizer = serving.GraphBertTokenizer(vocab_file,
                                                     do_lower_case=True)
  tokens = graph_tokenizer.tokenize(
      tf.constant([q for q, _ in pairs] + [c for _, c in pairs]))
  starts = tokens.row_splits[:-1]
  lengths = tokens.row_splits[1:] - starts
  n = len(pairs)
  windows = serving_windows.build_windows(
      tokens.ids, question_start=starts[:n], question_length=lengths[:n],
      context_start=starts[n:], context_length=lengths[n:],
      feature_config=FEATURES, tokenizer=graph_tokenizer)
  built = features.build_features(_examples(pairs), tokenizer, FEATURES)
  assert windows.example.numpy().tolist() == built.example_index.tolist()
  assert np.sum(built.example_index == 0) >= 5
  mask = windows.attention_mask.numpy()
  assert mask.shape[1] == max(built.lengths)
  for row in range(len(built)):
    length = built.lengths[row]
    assert mask[row].tolist() == [1] * length + [0] * (mask.shape[1] - length)
    for got, want in ((windows.input_ids, built.input_ids),
                      (windows.token_type_ids, built.token_type_ids)):
      assert got.numpy()[row, :length].tolist() == want[row].tolist()
    assert windows.context_offset.numpy()[row] == built.context_offset[row]
    example = built.example_index[row]
    first = (windows.context_start.numpy()[row] -
             starts.numpy()[n + example])
    assert first == np.sum(built.example_index[:row] == example) * 8
    assert (windows.context_length.numpy()[row] ==
            len(built.token_char_spans[row]))


def test_answer_matches_python_reference(bert_module, bert_tokenizer):
  expected, built = _reference(PAIRS, bert_tokenizer, bert_module.logits_fn)
  assert np.sum(built.example_index == 6) >= 5  # The long context.
  got = _answer(bert_module, PAIRS)
  assert any(got["answer"])
  _assert_matches_reference(got, expected, DECODE, _EMPTY_QUESTION)


def test_answer_matches_python_reference_v2(bert_module, bert_tokenizer,
                                            bert_vocab_file):
  v2 = config.DecodeConfig(n_best_size=5, max_answer_length=6,
                           version_2_with_negative=True)
  expected, _ = _reference(PAIRS, bert_tokenizer, bert_module.logits_fn, v2)
  # A threshold between two examples' null odds, so both outcomes occur.
  odds = sorted({p.null_odds for i, p in enumerate(expected)
                 if p.start_char >= 0 and i not in _EMPTY_QUESTION})
  threshold = (odds[len(odds) // 2 - 1] + odds[len(odds) // 2]) / 2
  v2 = config.DecodeConfig(n_best_size=5, max_answer_length=6,
                           version_2_with_negative=True,
                           null_score_diff_threshold=threshold)
  expected, _ = _reference(PAIRS, bert_tokenizer, bert_module.logits_fn, v2)
  module = _module(bert_vocab_file, v2, logits_fn=bert_module.logits_fn)
  got = _answer(module, PAIRS)
  assert "" in [got["answer"][i] for i in range(len(PAIRS))
                if PAIRS[i][1].strip() and i not in _EMPTY_QUESTION]
  _assert_matches_reference(got, expected, v2, _EMPTY_QUESTION)
  null_score = expected[9].score  # Empty context: the null score.
  for row in _EMPTY_QUESTION:
    assert got["score"][row] == pytest.approx(null_score, rel=1e-6)


def test_chunked_windows_match_reference_with_tiny_vocab(vocab_file,
                                                         tokenizer):
  module = _module(vocab_file, max_windows_per_batch=2)
  expected, built = _reference(PAIRS, tokenizer, module.logits_fn)
  assert len(built) > 2 * 5
  _assert_matches_reference(_answer(module, PAIRS), expected, DECODE,
                            _EMPTY_QUESTION)


class _ShapeRecorder(tf.Module):
  """A logits_fn that records the [n, seq] shape of every call."""

  def __init__(self, inner):
    super().__init__()
    self.inner = inner
    self.shapes = []

  def __call__(self, input_ids, attention_mask, token_type_ids):
    def record(shape):
      self.shapes.append(tuple(shape.numpy().tolist()))
      return shape
    shape = tf.py_function(record, [tf.shape(input_ids)], tf.int32)
    with tf.control_dependencies([shape]):
      return self.inner(tf.identity(input_ids), attention_mask,
                        token_type_ids)


def test_chunks_hold_length_sorted_windows_cut_to_their_longest(
    vocab_file, tokenizer):
  recorder = _ShapeRecorder(LookupLogits(_vocab_size(vocab_file)))
  module = _module(vocab_file, logits_fn=recorder, max_windows_per_batch=3)
  # A short context, a long one (many windows), another short one.
  pairs = [("who?", "short context here."), PAIRS[6], ("what?", "the town")]
  expected, built = _reference(pairs, tokenizer, recorder.inner)
  lengths = sorted(len(ids) for ids in built.input_ids)
  recorder.shapes.clear()
  _assert_matches_reference(_answer(module, pairs), expected, DECODE)
  want = [(len(lengths[i:i + 3]), max(lengths[i:i + 3]))
          for i in range(0, len(lengths), 3)]
  assert recorder.shapes == want
  assert want[0][1] < FEATURES.max_seq_length  # The short ones were cut.


def test_chunked_bert_logits_match_one_batch(vocab_file, tokenizer):
  import transformers  # pylint: disable=import-outside-toplevel
  tf.random.set_seed(0)
  model = transformers.TFBertForQuestionAnswering(
      transformers.BertConfig(**tiny_bert_config()))
  logits_fn = lambda ids, mask, types: tuple(model(  # noqa: E731
      {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
      training=False)[:2])
  one_batch = _answer(_module(vocab_file, logits_fn=logits_fn), PAIRS)
  for size in (1, 2, 5):
    chunked = _answer(_module(vocab_file, logits_fn=logits_fn,
                              max_windows_per_batch=size), PAIRS)
    assert chunked["answer"] == one_batch["answer"], size
    assert chunked["start_char"] == one_batch["start_char"], size
    np.testing.assert_allclose(chunked["score"], one_batch["score"],
                               rtol=1e-5, atol=1e-5)


def test_predict_logits_equals_logits_fn(bert_module):
  rng = np.random.default_rng(3)
  input_ids = rng.integers(0, 1000, size=[3, 7]).astype(np.int32)
  mask = np.ones([3, 7], np.int32)
  types = rng.integers(0, 2, size=[3, 7]).astype(np.int32)
  got = bert_module.predict_logits(input_ids, mask, types)
  start, end = bert_module.logits_fn(input_ids, mask, types)
  np.testing.assert_array_equal(got["start_logits"].numpy(), start.numpy())
  np.testing.assert_array_equal(got["end_logits"].numpy(), end.numpy())


@pytest.mark.parametrize("context,answer,start_word,end_word", [
    ("Yesterday Zoë visited São Paulo again.", "São Paulo", "sao", "paulo"),
    ("Zoë était là.", "Zoë", "zoe", "zoe"),
    ("首都は東京です。", "東京", "東", "京"),
    ("I ate 🍕 pizza today.", "🍕 pizza", "[UNK]", "pizza"),
    # As in HF, a trailing combining mark stays outside the token's span.
    ("the cafe\u0301 is open", "cafe", "cafe", "cafe"),
])
def test_offsets_index_the_python_string(bert_vocab_file, bert_tokenizer,
                                         context, answer, start_word,
                                         end_word):
  start_id, end_id = bert_tokenizer.convert_tokens_to_ids(
      [start_word, end_word])
  logits_fn = LookupLogits(_vocab_size(bert_vocab_file),
                           boost=[(start_id, 0, 50.0), (end_id, 1, 50.0)])
  module = _module(bert_vocab_file, logits_fn=logits_fn)
  got = _answer(module, [("what?", context)])
  start, end = got["start_char"][0], got["end_char"][0]
  assert got["answer"][0] == answer
  assert context[start:end] == answer
  assert start == context.index(answer)


def test_empty_inputs_and_empty_batch(vocab_file):
  module = _module(vocab_file, config.DecodeConfig(
      n_best_size=5, max_answer_length=6, version_2_with_negative=True))
  got = _answer(module, [])
  assert all(len(v) == 0 for v in got.values())
  got = _answer(module, [("", ""), ("who?", ""), ("", "the town"),
                         ("who?", "the town"), (" \t", "\x00")])
  assert got["answer"][:3] == ["", "", ""]
  assert got["start_char"][:3] == got["end_char"][:3] == [-1, -1, -1]
  assert got["answer"][4] == "" and got["start_char"][4] == -1
  # v2.0: rows without an answer carry the null score, [CLS]'s logits.
  assert np.all(np.isfinite(got["score"]))
  v1 = _module(vocab_file, logits_fn=module.logits_fn)
  got = _answer(v1, [("", "the town"), ("who?", "")])
  assert got["score"].tolist() == [0.0, 0.0]


def test_question_and_context_batches_must_match(vocab_file):
  module = _module(vocab_file)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="must have the same length"):
    module.answer(tf.constant(["who?", "what?"]), tf.constant(["the town"]))


@pytest.fixture(scope="module")
def saved_model(vocab_file, tmp_path_factory):
  """A chunked tiny-vocab module saved from a vocab file deleted afterwards."""
  workdir = tmp_path_factory.mktemp("export")
  vocab_copy = str(workdir / "vocab.txt")
  shutil.copy(vocab_file, vocab_copy)
  module = _module(vocab_copy, max_windows_per_batch=2)
  export_dir = str(workdir / "saved_model")
  tf.saved_model.save(module, export_dir, signatures={
      "serving_default": module.answer.get_concrete_function(),
      "predict_logits": module.predict_logits.get_concrete_function(),
  })
  os.remove(vocab_copy)  # The export must use its own asset copy.
  return module, export_dir


_FRESH_PROCESS_SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # Registers the tokenizer ops.
inputs = json.load(open(sys.argv[1], encoding="utf-8"))
loaded = tf.saved_model.load(sys.argv[2])
out = loaded.signatures["serving_default"](
    question=tf.constant(inputs["questions"], tf.string),
    context=tf.constant(inputs["contexts"], tf.string))
logits = loaded.signatures["predict_logits"](
    input_ids=tf.constant([[2, 7, 3]]), attention_mask=tf.constant([[1, 1, 1]]),
    token_type_ids=tf.constant([[0, 0, 1]]))
assert "tfqa" not in sys.modules and "transformers" not in sys.modules
print(json.dumps({
    "answer": [a.decode("utf-8") for a in out["answer"].numpy()],
    "score": out["score"].numpy().tolist(),
    "start_char": out["start_char"].numpy().tolist(),
    "end_char": out["end_char"].numpy().tolist(),
    "start_logits": logits["start_logits"].numpy().tolist(),
}))
"""


def test_saved_model_answers_in_a_fresh_process(saved_model, tmp_path):
  module, export_dir = saved_model
  assert os.listdir(os.path.join(export_dir, "assets")) == ["vocab.txt"]
  inputs = tmp_path / "inputs.json"
  inputs.write_text(json.dumps({"questions": [q for q, _ in PAIRS],
                                "contexts": [c for _, c in PAIRS]}),
                    encoding="utf-8")
  result = subprocess.run(
      [sys.executable, "-c", _FRESH_PROCESS_SCRIPT, str(inputs), export_dir],
      capture_output=True, text=True, timeout=120, check=False,
      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  got = json.loads(result.stdout.strip().splitlines()[-1])
  want = _answer(module, PAIRS)
  assert got["answer"] == want["answer"]
  assert got["start_char"] == want["start_char"]
  assert got["end_char"] == want["end_char"]
  np.testing.assert_allclose(got["score"], want["score"], rtol=1e-6)
  start, _ = module.logits_fn(tf.constant([[2, 7, 3]]), None,
                              tf.constant([[0, 0, 1]]))
  np.testing.assert_allclose(got["start_logits"], start.numpy(), rtol=1e-6)


def test_custom_ops_used_lists_only_tensorflow_text_ops(saved_model):
  _, export_dir = saved_model
  ops = serving.custom_ops_used(export_dir)
  assert ops == ["NormalizeUTF8", "RegexSplitWithOffsets",
                 "WordpieceTokenizeWithOffsets"]
  assert not any(hasattr(tf.raw_ops, op) for op in ops)


def test_custom_ops_used_rejects_a_directory_without_saved_model(tmp_path):
  with pytest.raises(ValueError, match="holds no saved_model.pb"):
    serving.custom_ops_used(str(tmp_path))


@pytest.mark.parametrize("overrides,match", [
    ({"logits_fn": "not callable"}, "Expected a callable"),
    ({"feature_config": {"max_seq_length": 32}}, "FeatureConfig"),
    ({"decode_config": None}, "DecodeConfig"),
    ({"max_windows_per_batch": 0}, "max_windows_per_batch=0"),
    ({"do_lower_case": "yes"}, "do_lower_case='yes'"),
    ({"vocab_file": "/no/such/vocab.txt"}, "Expected the path of an existing"),
])
def test_invalid_arguments_are_rejected(vocab_file, overrides, match):
  kwargs = dict(logits_fn=LookupLogits(_vocab_size(vocab_file)),
                vocab_file=vocab_file, do_lower_case=True,
                feature_config=FEATURES, decode_config=DECODE)
  kwargs.update(overrides)
  with pytest.raises(ValueError, match=match):
    serving.QAServingModule(**kwargs)


def test_vocab_without_special_tokens_is_rejected(tmp_path):
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"without \['\[CLS\]', '\[SEP\]'\]"):
    serving.GraphBertTokenizer(str(vocab), do_lower_case=True)


@pytest.mark.parametrize("version_2", [False, True])
def test_softmax_span_scoring_matches_reference(
    bert_vocab_file, bert_tokenizer, bert_module, version_2):
  decode = config.DecodeConfig(n_best_size=5, max_answer_length=6,
                               version_2_with_negative=version_2,
                               span_scoring="pipeline")
  expected, _ = _reference(PAIRS, bert_tokenizer, bert_module.logits_fn,
                           decode)
  module = _module(bert_vocab_file, decode, logits_fn=bert_module.logits_fn)
  _assert_matches_reference(_answer(module, PAIRS), expected, decode,
                            _EMPTY_QUESTION)


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
