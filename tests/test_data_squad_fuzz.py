"""Hostile input for tfqa.data.squad: a fuzz corpus with exact outcomes, generated extremes, hypothesis properties."""

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

from tfqa.data import squad as data

from conftest import json_paths

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


# "<memory>: data[0].qas[1].id: expected ..., got ..." (and maybe ". Fix.").
_ERROR = re.compile(r"<memory>: (?P<path>\S+): expected (?P<expected>.+?), "
                    r"got (?P<got>.*)", re.S)
_MISSING = "nothing (the key is missing)"


def _json_path_keys(json_path):
  """"data[0].qas" -> ["data", 0, "qas"]; "<root>" -> []."""
  if json_path == "<root>":
    return []
  return [int(index) if index else key for index, key in
          re.findall(r"\[(\d+)\]|([^.\[]+)", json_path)]


def _assert_refusal_names_the_value_there(obj, message):
  """The error's JSON path exists in `obj` and it quotes the value found there.

  Returns the path's keys.
  """
  match = _ERROR.fullmatch(message)
  assert match, message
  keys = _json_path_keys(match["path"])
  target = obj
  for key in keys[:-1]:
    target = target[key]  # Every step but the last exists.
  if keys and isinstance(target, dict) and keys[-1] not in target:
    shown = _MISSING
  else:
    value = target[keys[-1]] if keys else target
    # Exact where the error's short repr is the plain one.
    plain = (value is None or isinstance(value, (bool, float)) or
             (isinstance(value, (int, str)) and len(repr(value)) <= 40))
    shown = repr(value) if plain else None
  if shown is not None:
    got = match["got"]
    assert got == shown or got.startswith(shown + ". "), (message, shown)
  return keys


def _qas(obj):
  """(title, context, qa) of every question of a document that parsed."""
  for article in obj["data"]:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        yield article.get("title", ""), paragraph["context"], qa


def _assert_examples_come_from(obj, squad):
  """Each question is kept as written or dropped; answers are exact spans."""
  qas = list(_qas(obj))
  report = squad.report
  assert len(qas) == (len(squad.examples) +
                      sum(report.dropped_examples.values()))
  kept = {example.id: example for example in squad.examples}
  assert [qa["id"] for _, _, qa in qas if qa["id"] in kept] == list(kept)
  for title, context, qa in qas:
    if qa["id"] not in kept:
      continue
    example = kept[qa["id"]]
    assert (example.title, example.question, example.context,
            example.is_impossible) == (title, qa["question"], context,
                                       qa.get("is_impossible", False))
    given_texts = [answer["text"] for answer in qa["answers"]]
    assert set(example.answer_texts) <= set(given_texts)
    for text, start in zip(example.answer_texts, example.answer_starts):
      assert context[start:start + len(text)] == text


@FUZZ
@given(_JSON)
def test_any_json_value_is_parsed_exactly_or_refused_where_it_is_wrong(obj):
  try:
    squad = data.parse_squad(obj)
  except data.SquadFormatError as e:
    _assert_refusal_names_the_value_there(obj, str(e))
    return
  _assert_examples_come_from(obj, squad)


_VALID = _doc([_qa("a", "Thomas Pellew", 28), _qa("b", "1844", 45)])
_VALID_PATHS = list(json_paths(_VALID))
_VALID_EXAMPLES = data.parse_squad(_VALID).examples
_QAS_PATH = ("data", 0, "paragraphs", 0, "qas")
# Errors that name a value beside the one that is wrong: an id used twice
# (the later one), answers given for an impossible question.
_ACROSS_FIELDS = ("a question id not already used at",
                  "[] because is_impossible is true")


@FUZZ
@given(st.sampled_from(_VALID_PATHS[1:]), _JSON)
def test_a_valid_file_with_any_value_replaced_changes_only_that_part(path,
                                                                     junk):
  doc = json.loads(json.dumps(_VALID))
  target = doc
  for key in path[:-1]:
    target = target[key]
  target[path[-1]] = junk
  try:
    squad = data.parse_squad(doc)
  except data.SquadFormatError as e:
    keys = _assert_refusal_names_the_value_there(doc, str(e))
    # Refused where the junk went (or inside it), unless the rule it breaks
    # spans two fields.
    assert (tuple(keys[:len(path)]) == path or
            any(rule in str(e) for rule in _ACROSS_FIELDS)), (path, str(e))
    return
  _assert_examples_come_from(doc, squad)
  # The other question's example is untouched by junk inside one question.
  if path[:len(_QAS_PATH)] == _QAS_PATH and len(path) > len(_QAS_PATH):
    other = _VALID_EXAMPLES[1 - path[len(_QAS_PATH)]]
    assert other in squad.examples
  elif path == ("version",):  # Not read.
    assert squad.examples == _VALID_EXAMPLES


# Text from every part of Unicode that SQuAD files carry: RTL, CJK, emoji,
# combining marks, controls, but no lone surrogates (JSON cannot encode them
# from a str without escapes; the corpus covers the escape).
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1,
                max_size=80)


# Few letters: answers that occur several times (the tie rule has its own
# cases in test_data.test_realign_to_nearest_occurrence).
_REPETITIVE = st.text(alphabet="ab ", min_size=1, max_size=12)


@FUZZ
@given(_TEXT | _REPETITIVE, st.data())
def test_answers_are_kept_exactly_realigned_or_dropped(context, draw):
  lo = draw.draw(st.integers(0, len(context) - 1))
  hi = draw.draw(st.integers(lo + 1, len(context)))
  text = context[lo:hi]
  # Anywhere (past the end: the last occurrence), in the context (between
  # occurrences), or the answer's own start.
  start = draw.draw(st.integers(0, 10**9) | st.integers(0, len(context)) |
                    st.just(lo))
  # Every field is valid: nothing is refused.
  squad = data.parse_squad(_doc([_qa("a", text, start)], context))
  if not text.strip():
    assert squad.examples == ()
    assert squad.report.dropped_answers == {"empty_answer_text": 1}
    assert squad.report.dropped_examples == {"no_valid_answer": 1}
    return
  # The occurrence nearest the given start, the earlier one on a tie.
  occurrences = [p for p in range(len(context))
                 if context.startswith(text, p)]
  nearest = min(occurrences, key=lambda p: (abs(p - start), p))
  example, = squad.examples
  assert (example.answer_texts, example.answer_starts) == ((text,),
                                                           (nearest,))
  assert squad.report.num_realigned == (0 if nearest == start else 1)
  assert squad.report.dropped_answers == {}


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_are_loaded_or_refused_as_their_json_is(tmp_path_factory,
                                                          raw):
  path = tmp_path_factory.mktemp("bytes") / "raw.json"
  path.write_bytes(raw)
  # What the bytes are, by the standard library: not UTF-8, not JSON, or a
  # JSON value that parses (or not) as it would from memory.
  try:
    text = raw.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    want = ("refused", f"{path}: byte {e.start}: expected UTF-8 text, got ")
  else:
    try:
      obj = json.loads(text)
    except json.JSONDecodeError as e:
      want = ("refused", f"{path}: line {e.lineno} column {e.colno}: "
                         f"expected JSON, got ")
    except RecursionError:
      want = ("refused", f"{path}: expected SQuAD JSON, got arrays/objects "
                         f"nested too deeply")
    else:
      try:
        want = ("parsed", data.parse_squad(obj).examples)
      except data.SquadFormatError as e:
        want = ("refused", str(e).replace("<memory>: ", f"{path}: ", 1))
  try:
    got = ("parsed", data.load_squad_json(str(path)).examples)
  except data.SquadFormatError as e:
    got = ("refused", str(e)[:len(want[1])])
  assert got == want
