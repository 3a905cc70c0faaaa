"""Hostile input for the exported serving signatures: empty, huge, control, RTL/CJK/emoji, invalid UTF-8, big batches."""

import resource
import time

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_export

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def serve(tmp_path_factory, tiny_files):
  """serving_default of the tiny export: (questions, contexts) -> numpy dict."""
  import tensorflow_text  # pylint: disable=import-outside-toplevel,unused-import
  from tfqa.inference import predictor  # pylint: disable=import-outside-toplevel

  _, export_dir = tiny_export(tmp_path_factory, tiny_files)
  loaded = tf.saved_model.load(predictor.resolve_saved_model(export_dir))
  signature = loaded.signatures["serving_default"]

  def call(questions, contexts):
    out = signature(question=tf.constant(questions, tf.string),
                    context=tf.constant(contexts, tf.string))
    return {name: value.numpy() for name, value in out.items()}

  call.loaded = loaded  # keeps the functions alive
  return call


def _check_rows(out, contexts):
  """Every row: no answer (-1, -1, "") or a span whose text it returns."""
  assert {name: value.shape for name, value in out.items()} == {
      name: (len(contexts),) for name in ("answer", "score", "start_char",
                                          "end_char")}
  assert np.all(np.isfinite(out["score"]))
  for row, context in enumerate(contexts):
    answer = out["answer"][row].decode("utf-8")
    start, end = int(out["start_char"][row]), int(out["end_char"][row])
    if start < 0:
      assert (start, end, answer) == (-1, -1, "")
    else:
      assert 0 <= start < end <= len(context)
      assert context[start:end] == answer


HOSTILE = [
    ("", ""),
    ("who?", ""),
    ("", "paris is the capital city of france ."),
    ("who built the town ?", "\x00\x07\x1b[31m the lighthouse \u200b\u202e"
     " keeper built the town in 1887 .\r\n\t"),
    ("מי בנה את המגדלור ?", "בנה את המגדלור  العربية paris is the capital ."),
    ("灯塔是谁建的？", "灯塔 was built by the keeper in 1887 。東京"),
    ("💡 who?", "👩‍👩‍👧 the keeper 🏳️‍🌈 built the town in 1887 . 🇫🇷"),
    ("e\u0301 who built ?", "cafe\u0301 the keeper built the town ."),
    ("?" * 5000, "the keeper built the town ."),
]


def test_hostile_rows_in_one_batch_answer_or_abstain(serve):
  questions, contexts = zip(*HOSTILE)
  _check_rows(serve(list(questions), list(contexts)), contexts)


def test_empty_question_and_context_give_no_answer(serve):
  out = serve([""], [""])
  assert out["answer"].tolist() == [b""]
  assert out["start_char"].tolist() == [-1]
  assert out["end_char"].tolist() == [-1]


def test_invalid_utf8_does_not_crash(serve):
  raw = [b"\xff\xfe the keeper", b"paris \xc3", b"\xed\xa0\x80 the town"]
  out = serve([b"who?"] * 3, raw)
  assert out["answer"].shape == (3,)
  assert np.all(out["start_char"] <= out["end_char"])


def test_batch_of_a_thousand(serve):
  questions = [HOSTILE[i % len(HOSTILE)][0] for i in range(1000)]
  contexts = [HOSTILE[i % len(HOSTILE)][1] for i in range(1000)]
  started = time.monotonic()
  out = serve(questions, contexts)
  assert time.monotonic() - started < 120
  _check_rows(out, contexts)
  # Equal inputs, equal outputs, wherever they sit in the batch.
  single = serve(list(questions[:len(HOSTILE)]),
                 list(contexts[:len(HOSTILE)]))
  for row in range(1000):
    assert out["answer"][row] == single["answer"][row % len(HOSTILE)]


def test_megabyte_context_in_bounded_time_and_memory(serve):
  context = ("the lighthouse keeper built the town in 1887 . " * 25_000)[
      :1_000_000]
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  started = time.monotonic()
  out = serve(["who built the town ?", "who?"], [context, "paris ."])
  assert time.monotonic() - started < 180
  _check_rows(out, [context, "paris ."])
  grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss -
               rss_before) / 1024
  # Measured ~600 MiB for ~125k windows of 32 tokens; 4 GiB is the bound.
  assert grown_mib < 4096


def test_mismatched_batch_sizes_are_a_clear_error(serve):
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="`question` and `context` must have the same "
                           "length"):
    serve(["a", "b"], ["c"])


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@FUZZ
@given(st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=6))
def test_any_unicode_rows_answer_or_abstain(serve, rows):
  questions, contexts = zip(*rows)
  _check_rows(serve(list(questions), list(contexts)), contexts)
