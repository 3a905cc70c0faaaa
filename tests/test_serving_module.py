"""Tests for tfqa.serving.module: QAServingModule answers raw text in chunks of length-sorted windows, checks its arguments, and serves from a SavedModel in a fresh process."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfqa import config
from tfqa import serving

from conftest import run_python, tiny_bert_config
from helpers.serving_graph import (DECODE, EMPTY_QUESTION, FEATURES, PAIRS,
                                   LookupLogits, answer_pairs,
                                   assert_matches_reference, reference,
                                   serving_module, vocab_size)


@pytest.fixture(scope="module")
def bert_module(bert_vocab_file):
  return serving_module(bert_vocab_file)


def test_chunked_windows_match_reference_with_tiny_vocab(vocab_file,
                                                         tokenizer):
  module = serving_module(vocab_file, max_windows_per_batch=2)
  expected, built = reference(PAIRS, tokenizer, module.logits_fn)
  assert len(built) > 2 * 5
  assert_matches_reference(answer_pairs(module, PAIRS), expected, DECODE,
                            EMPTY_QUESTION)


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
  recorder = _ShapeRecorder(LookupLogits(vocab_size(vocab_file)))
  module = serving_module(vocab_file, logits_fn=recorder, max_windows_per_batch=3)
  # A short context, a long one (many windows), another short one.
  pairs = [("who?", "short context here."), PAIRS[6], ("what?", "the town")]
  expected, built = reference(pairs, tokenizer, recorder.inner)
  lengths = sorted(len(ids) for ids in built.input_ids)
  recorder.shapes.clear()
  assert_matches_reference(answer_pairs(module, pairs), expected, DECODE)
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
  one_batch = answer_pairs(serving_module(vocab_file, logits_fn=logits_fn), PAIRS)
  for size in (1, 2, 5):
    chunked = answer_pairs(serving_module(vocab_file, logits_fn=logits_fn,
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
  logits_fn = LookupLogits(vocab_size(bert_vocab_file),
                           boost=[(start_id, 0, 50.0), (end_id, 1, 50.0)])
  module = serving_module(bert_vocab_file, logits_fn=logits_fn)
  got = answer_pairs(module, [("what?", context)])
  start, end = got["start_char"][0], got["end_char"][0]
  assert got["answer"][0] == answer
  assert context[start:end] == answer
  assert start == context.index(answer)


def test_empty_inputs_and_empty_batch(vocab_file):
  module = serving_module(vocab_file, config.DecodeConfig(
      n_best_size=5, max_answer_length=6, version_2_with_negative=True))
  got = answer_pairs(module, [])
  assert all(len(v) == 0 for v in got.values())
  got = answer_pairs(module, [("", ""), ("who?", ""), ("", "the town"),
                         ("who?", "the town"), (" \t", "\x00")])
  assert got["answer"][:3] == ["", "", ""]
  assert got["start_char"][:3] == got["end_char"][:3] == [-1, -1, -1]
  assert got["answer"][4] == "" and got["start_char"][4] == -1
  # v2.0: rows without an answer carry the null score, [CLS]'s logits.
  assert np.all(np.isfinite(got["score"]))
  v1 = serving_module(vocab_file, logits_fn=module.logits_fn)
  got = answer_pairs(v1, [("", "the town"), ("who?", "")])
  assert got["score"].tolist() == [0.0, 0.0]


def test_question_and_context_batches_must_match(vocab_file):
  module = serving_module(vocab_file)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="must have the same length"):
    module.answer(tf.constant(["who?", "what?"]), tf.constant(["the town"]))


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


def test_saved_model_answers_in_a_fresh_process(serving_saved_model, tmp_path):
  module, export_dir = serving_saved_model
  assert os.listdir(os.path.join(export_dir, "assets")) == ["vocab.txt"]
  inputs = tmp_path / "inputs.json"
  inputs.write_text(json.dumps({"questions": [q for q, _ in PAIRS],
                                "contexts": [c for _, c in PAIRS]}),
                    encoding="utf-8")
  result = run_python(["-c", _FRESH_PROCESS_SCRIPT, inputs, export_dir],
                      timeout=120, cwd=tmp_path)
  got = json.loads(result.stdout.strip().splitlines()[-1])
  want = answer_pairs(module, PAIRS)
  assert got["answer"] == want["answer"]
  assert got["start_char"] == want["start_char"]
  assert got["end_char"] == want["end_char"]
  np.testing.assert_allclose(got["score"], want["score"], rtol=1e-6)
  start, _ = module.logits_fn(tf.constant([[2, 7, 3]]), None,
                              tf.constant([[0, 0, 1]]))
  np.testing.assert_allclose(got["start_logits"], start.numpy(), rtol=1e-6)


@pytest.mark.parametrize("overrides,match", [
    ({"logits_fn": "not callable"}, "Expected a callable"),
    ({"feature_config": {"max_seq_length": 32}}, "FeatureConfig"),
    ({"decode_config": None}, "DecodeConfig"),
    ({"max_windows_per_batch": 0}, "max_windows_per_batch=0"),
    ({"do_lower_case": "yes"}, "do_lower_case='yes'"),
    ({"vocab_file": "/no/such/vocab.txt"}, "Expected the path of an existing"),
])
def test_invalid_arguments_are_rejected(vocab_file, overrides, match):
  kwargs = dict(logits_fn=LookupLogits(vocab_size(vocab_file)),
                vocab_file=vocab_file, do_lower_case=True,
                feature_config=FEATURES, decode_config=DECODE)
  kwargs.update(overrides)
  with pytest.raises(ValueError, match=match):
    serving.QAServingModule(**kwargs)
