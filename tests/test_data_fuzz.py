"""Hostile input for tfqa.data: a fuzz corpus with exact outcomes, generated extremes, hypothesis properties."""

import json
import pathlib
import re
import resource
import time

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from tfqa import data

CORPUS = pathlib.Path(__file__).parent / "fuzz_corpus" / "squad"
EXPECTED = json.loads((CORPUS / "EXPECTED.json").read_text(encoding="utf-8"))
# Deterministic and quick: the same examples on every run.
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
_CONTEXT = "The lighthouse was built by Thomas Pellew in 1844."


def _doc(qas, context=_CONTEXT):
  return {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
      {"context": context, "qas": qas}]}]}


def _qa(qid, text, start):
  return {"id": qid, "question": "Who?",
          "answers": [{"text": text, "answer_start": start}]}


def test_corpus_lists_every_file():
  files = sorted(p.name for p in CORPUS.glob("*.json")
                 if p.name != "EXPECTED.json")
  assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_its_exact_outcome(name):
  path = str(CORPUS / name)
  expected = EXPECTED[name]
  if "error" in expected:
    with pytest.raises(data.SquadFormatError,
                       match=f"^{re.escape(path)}: ") as error:
      data.load_squad_json(path)
    assert expected["error"] in str(error.value)
  else:
    squad = data.load_squad_json(path)
    got = [[e.answer_texts[0], e.answer_starts[0]] for e in squad.examples]
    assert got == expected["examples"]
    for example in squad.examples:
      start, text = example.answer_starts[0], example.answer_texts[0]
      assert example.context[start:start + len(text)] == text


def test_deep_nesting_is_a_clear_error(tmp_path):
  path = tmp_path / "deep.json"
  path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
  with pytest.raises(data.SquadFormatError,
                     match=f"^{re.escape(str(path))}: expected SQuAD JSON, "
                           f"got arrays/objects nested too deeply"):
    data.load_squad_json(str(path))


def test_megabyte_context_and_ten_thousand_questions_load_quickly(tmp_path):
  context = "filler words here " * 60_000 + _CONTEXT  # ~1 MB
  start = context.index("Thomas Pellew")
  qas = [_qa(f"q{i}", "Thomas Pellew", start) for i in range(10_000)]
  path = tmp_path / "big.json"
  path.write_text(json.dumps(_doc(qas, context)), encoding="utf-8")
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  started = time.monotonic()
  squad = data.load_squad_json(str(path))
  assert time.monotonic() - started < 30
  assert len(squad.examples) == 10_000
  assert squad.examples[-1].answer_starts == (start,)
  # The 10k examples share one context string: no per-question copies.
  assert all(e.context is squad.examples[0].context for e in squad.examples)
  grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
  assert grown_kib < 200 * 1024


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() |
    st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.sampled_from(["data", "paragraphs", "qas", "context",
                                     "id", "question", "answers", "text",
                                     "answer_start", "is_impossible",
                                     "title", "x"]), children, max_size=5),
    max_leaves=25)


@FUZZ
@given(_JSON)
def test_any_json_value_is_parsed_or_refused_cleanly(obj):
  try:
    squad = data.parse_squad(obj)
  except data.SquadFormatError as e:
    assert str(e).startswith("<memory>: ")
    return
  for example in squad.examples:
    for text, start in zip(example.answer_texts, example.answer_starts):
      assert example.context[start:start + len(text)] == text


def _paths(value, path=()):
  yield path
  children = (value.items() if isinstance(value, dict) else
              enumerate(value) if isinstance(value, list) else ())
  for key, child in children:
    yield from _paths(child, path + (key,))


_VALID = _doc([_qa("a", "Thomas Pellew", 28), _qa("b", "1844", 45)])
_VALID_PATHS = list(_paths(_VALID))


@FUZZ
@given(st.sampled_from(_VALID_PATHS[1:]), _JSON)
def test_a_valid_file_with_any_value_replaced_is_parsed_or_refused(path, junk):
  doc = json.loads(json.dumps(_VALID))
  target = doc
  for key in path[:-1]:
    target = target[key]
  target[path[-1]] = junk
  try:
    squad = data.parse_squad(doc)
  except data.SquadFormatError:
    return
  for example in squad.examples:
    for text, start in zip(example.answer_texts, example.answer_starts):
      assert example.context[start:start + len(text)] == text


# Text from every part of Unicode that SQuAD files carry: RTL, CJK, emoji,
# combining marks, controls, but no lone surrogates (JSON cannot encode them
# from a str without escapes; the corpus covers the escape).
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1,
                max_size=80)


@FUZZ
@given(_TEXT, st.data())
def test_answers_are_kept_exactly_realigned_or_dropped(context, draw):
  lo = draw.draw(st.integers(0, len(context) - 1))
  hi = draw.draw(st.integers(lo + 1, len(context)))
  text = context[lo:hi]
  start = draw.draw(st.integers(0, 10**9) | st.just(lo))
  doc = _doc([_qa("a", text, start)], context)
  try:
    squad = data.parse_squad(doc)
  except data.SquadFormatError as e:
    # Only blank answers (e.g. "   ") or blank questions are refused.
    assert "answers[0].text" in str(e) or "context" in str(e), str(e)
    return
  for example in squad.examples:
    answer_start, = example.answer_starts
    answer, = example.answer_texts
    assert answer == text
    assert context[answer_start:answer_start + len(answer)] == text
    if start == lo:
      assert answer_start == lo
  dropped = sum(squad.report.dropped_examples.values()) + sum(
      squad.report.dropped_answers.values())
  assert len(squad.examples) + min(dropped, 1) == 1


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_are_loaded_or_refused_cleanly(tmp_path_factory, raw):
  path = tmp_path_factory.mktemp("bytes") / "raw.json"
  path.write_bytes(raw)
  try:
    data.load_squad_json(str(path))
  except data.SquadFormatError as e:
    assert str(e).startswith(f"{path}: ")
