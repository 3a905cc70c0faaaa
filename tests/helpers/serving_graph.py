"""What the serving tests share: small windows, (question, context) pairs, a lookup stand-in for a model, the Python reference answers."""

import os
import shutil

import numpy as np
import tensorflow as tf

from tfqa import config
from tfqa import serving
from tfqa.data import squad
from tfqa.data import windows
from tfqa.evaluation import decoding

# Small windows so that a paragraph spans many of them.
FEATURES = config.FeatureConfig(max_seq_length=32, doc_stride=8,
                                max_query_length=8)


DECODE = config.DecodeConfig(n_best_size=5, max_answer_length=6)


LONG_CONTEXT = (
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
    ("What happened in the long story?", LONG_CONTEXT),
    ("", "Context without a question."),
    ("Question without context?", ""),
    ("", ""),
    ("   ", "\t\n"),
    ("control chars?", "cafe\u0301 at\u200bthe corner\x00 with 1…2 km²"),
    ("Ｆｕｌｌ width?", "ﬁne straße İstanbul ΣΑΣ 한국어 a\u00a0b\u3000c"),
)


# Rows whose question has no word pieces: the graph answers nothing there.
EMPTY_QUESTION = {7, 9, 10}


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


def vocab_size(vocab_file):
  with open(vocab_file, encoding="utf-8") as f:
    return sum(1 for _ in f)


def serving_module(vocab_file, decode_config=DECODE, **kwargs):
  return serving.QAServingModule(
      logits_fn=kwargs.pop("logits_fn", None) or
      LookupLogits(vocab_size(vocab_file)),
      vocab_file=vocab_file, do_lower_case=kwargs.pop("do_lower_case", True),
      feature_config=kwargs.pop("feature_config", FEATURES),
      decode_config=decode_config, **kwargs)


def answer_pairs(module, pairs):
  out = module.answer(tf.constant([q for q, _ in pairs], tf.string),
                      tf.constant([c for _, c in pairs], tf.string))
  return {
      "answer": [a.decode("utf-8") for a in out["answer"].numpy()],
      "score": out["score"].numpy(),
      "start_char": out["start_char"].numpy().tolist(),
      "end_char": out["end_char"].numpy().tolist(),
  }


def pair_examples(pairs):
  return [squad.SquadExample(id=str(i), title="", question=q, context=c,
                            answer_texts=(), answer_starts=())
          for i, (q, c) in enumerate(pairs)]


def reference(pairs, tokenizer, logits_fn, decode_config=DECODE):
  """features.build_features + logits_fn per window + decode_predictions."""
  examples = pair_examples(pairs)
  built = windows.build_features(examples, tokenizer, FEATURES)
  starts, ends = [], []
  for ids, types in zip(built.input_ids, built.token_type_ids):
    start, end = logits_fn(tf.constant(ids[None]),
                           tf.ones([1, len(ids)], tf.int32),
                           tf.constant(types[None]))
    starts.append(start.numpy()[0])
    ends.append(end.numpy()[0])
  predictions = decoding.decode_predictions(examples, built, starts, ends,
                                           decode_config)
  return [predictions.by_id[e.id] for e in examples], built


def assert_matches_reference(got, expected, decode_config, empty_rows=()):
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


def save_chunked_module(vocab_file, workdir):
  """(module, SavedModel dir): a chunked tiny-vocab module saved from a vocab copy deleted afterwards."""
  vocab_copy = os.path.join(workdir, "vocab.txt")
  shutil.copy(vocab_file, vocab_copy)
  module = serving_module(vocab_copy, max_windows_per_batch=2)
  export_dir = os.path.join(workdir, "saved_model")
  tf.saved_model.save(module, export_dir, signatures={
      "serving_default": module.answer.get_concrete_function(),
      "predict_logits": module.predict_logits.get_concrete_function(),
  })
  os.remove(vocab_copy)  # The export must use its own asset copy.
  return module, export_dir
