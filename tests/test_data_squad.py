"""Tests for tfqa.data.squad: SQuAD loading, validation and answer alignment."""

import copy
import dataclasses
import json
import pathlib
import re
from unittest import mock

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfqa import config
from tfqa.data import squad
from tfqa.data.report import LoadReport
from tfqa.data.squad import SquadExample
from tfqa.data.squad import SquadFormatError

from conftest import json_paths

_SAMPLE_PATH = (pathlib.Path(__file__).resolve().parents[1].parent / "shared" /
                "data" / "squad_v2_dev_sample.json")
_CONTEXT = "The Normans gave their name to Normandy, a region in France."


def _answer(text, start):
  return {"text": text, "answer_start": start}


def _qa(qid, answers=(), question="Where?", **extra):
  return {"id": qid, "question": question, "answers": list(answers), **extra}


def _squad(*qas, context=_CONTEXT, title="Normans"):
  """One article, one paragraph holding `qas`."""
  return {"version": "v2.0", "data": [{
      "title": title,
      "paragraphs": [{"context": context, "qas": list(qas)}],
  }]}


def _valid_doc():
  return _squad(
      _qa("q1", [_answer("Normandy", 31)], is_impossible=False),
      _qa("q2", is_impossible=True, plausible_answers=[_answer("France", 53)]))


def _empty_report(source, num_examples, num_answers):
  return LoadReport(
      source=source, num_examples=num_examples, num_answers=num_answers,
      num_realigned=0, realigned_ids=(), dropped_answers={},
      dropped_answer_ids={}, dropped_examples={}, dropped_example_ids={})


def _write(tmp_path, obj, name="squad.json"):
  path = tmp_path / name
  path.write_text(json.dumps(obj), encoding="utf-8")
  return str(path)


# Valid input.


def test_parse_v1_fields_exact():
  doc = _squad(
      _qa("q1", [_answer("Normandy", 31), _answer("Normandy", 31)],
          question="What was named?"),
      _qa("q2", [_answer("France", 53)]))
  got = squad.parse_squad(doc, source="mem")
  assert got.examples == (
      SquadExample(id="q1", title="Normans", question="What was named?",
                   context=_CONTEXT, answer_texts=("Normandy", "Normandy"),
                   answer_starts=(31, 31)),
      SquadExample(id="q2", title="Normans", question="Where?",
                   context=_CONTEXT, answer_texts=("France",),
                   answer_starts=(53,)),
  )
  assert got.report == _empty_report("mem", num_examples=2, num_answers=3)
  assert not got.has_impossible


def test_parse_v2_impossible_and_plausible_answers():
  got = squad.parse_squad(_valid_doc())
  assert got.examples[1] == SquadExample(
      id="q2", title="Normans", question="Where?", context=_CONTEXT,
      answer_texts=(), answer_starts=(), is_impossible=True)
  assert got.has_impossible
  assert got.report == _empty_report("<memory>", num_examples=2, num_answers=1)


def test_missing_title_becomes_empty_string():
  doc = _squad(_qa("q1", [_answer("France", 53)]))
  del doc["data"][0]["title"]
  assert squad.parse_squad(doc).examples[0].title == ""


def test_unicode_context_offsets_are_characters(tmp_path):
  context = "Zürich — 東京 and São Paulo are cities. 😀 Émile lives in São Paulo."
  start = context.index("São Paulo")
  path = _write(tmp_path, _squad(_qa("ü1", [_answer("São Paulo", start)]),
                                 context=context, title="Städte"))
  example = squad.load_squad_json(path).examples[0]
  assert example == SquadExample(
      id="ü1", title="Städte", question="Where?", context=context,
      answer_texts=("São Paulo",), answer_starts=(start,))
  assert context[start:start + len("São Paulo")] == "São Paulo"


def test_load_accepts_utf8_byte_order_mark(tmp_path):
  path = tmp_path / "bom.json"
  path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_valid_doc()).encode())
  assert len(squad.load_squad_json(str(path)).examples) == 2


# Answer alignment and the load report.


@pytest.mark.parametrize(
    "start, expected",
    [
        (8, 8),    # Exact match: kept as is.
        (5, 8),    # Occurrences at 0, 8, 16: 8 is nearest.
        (4, 0),    # 0 and 8 are both 4 away: the earlier wins.
        (13, 16),  # 16 is 3 away, 8 is 5 away.
        (99, 16),  # Past the end of the context: the last occurrence.
    ])
def test_realign_to_nearest_occurrence(start, expected):
  doc = _squad(_qa("q1", [_answer("cat", start)]),
               context="cat dog cat dog cat")
  got = squad.parse_squad(doc)
  assert got.examples[0].answer_starts == (expected,)
  assert got.report.num_realigned == (0 if start == expected else 1)
  assert got.report.realigned_ids == (() if start == expected else ("q1",))


def test_drop_reasons_counted_with_ids():
  doc = _squad(
      _qa("keep", [_answer("Normandy", 30), _answer("zebra", 0),
                   _answer("France", 53)]),
      _qa("empty", [_answer("", 0), _answer("   ", 3)]),
      _qa("absent", [_answer("Paris", 10)]),
      _qa("none", []),
      _qa("impossible", is_impossible=True))
  got = squad.parse_squad(doc, source="mem")
  assert [ex.id for ex in got.examples] == ["keep", "impossible"]
  assert got.examples[0].answer_texts == ("Normandy", "France")
  assert got.examples[0].answer_starts == (31, 53)
  assert got.report == LoadReport(
      source="mem", num_examples=2, num_answers=2, num_realigned=1,
      realigned_ids=("keep",),
      dropped_answers={"text_not_in_context": 2, "empty_answer_text": 2},
      dropped_answer_ids={"text_not_in_context": ("keep", "absent"),
                          "empty_answer_text": ("empty",)},
      dropped_examples={"no_valid_answer": 2, "no_answers": 1},
      dropped_example_ids={"no_valid_answer": ("empty", "absent"),
                           "no_answers": ("none",)})


def test_report_keeps_first_five_ids():
  doc = _squad(*[_qa(f"q{i}", [_answer("zebra", 0)]) for i in range(7)])
  report = squad.parse_squad(doc).report
  assert report.dropped_examples == {"no_valid_answer": 7}
  assert report.dropped_example_ids == {
      "no_valid_answer": ("q0", "q1", "q2", "q3", "q4")}
  assert report.dropped_answers == {"text_not_in_context": 7}


def test_summary_mentions_counts_and_ids():
  doc = _squad(
      _qa("keep", [_answer("Normandy", 30), _answer("zebra", 0)]),
      _qa("gone", [_answer("", 0)]))
  summary = squad.parse_squad(doc, source="train.json").report.summary()
  assert summary.splitlines() == [
      "Loaded 1 example with 1 answer from train.json.",
      "Realigned 1 answer to the nearest exact occurrence of their text "
      "(ids: keep).",
      "Dropped 2 answers: text_not_in_context=1 (ids: keep); "
      "empty_answer_text=1 (ids: gone).",
      "Dropped 1 example: no_valid_answer=1 (ids: gone).",
  ]


def test_summary_of_clean_load():
  assert squad.parse_squad(_valid_doc()).report.summary().splitlines() == [
      "Loaded 2 examples with 1 answer from <memory>.",
      "Realigned 0 answers.",
      "Dropped 0 answers.",
      "Dropped 0 examples.",
  ]


def test_logs_summary_only_when_something_changed():
  with mock.patch.object(squad.logging, "info") as info:
    squad.parse_squad(_valid_doc())
    info.assert_not_called()
    got = squad.parse_squad(_squad(_qa("q1", [_answer("Normandy", 0)])))
    info.assert_called_once_with("SQuAD load report:\n%s",
                                 got.report.summary())


# Malformed input: one SquadFormatError naming file, JSON path and value.

_QA = "data[0].paragraphs[0].qas[0]"


def _set(path, value):
  """Returns a mutator that sets `path` (keys and indices) to `value`."""

  def mutate(doc):
    target = doc
    for key in path[:-1]:
      target = target[key]
    target[path[-1]] = value
    return doc

  return mutate


def _delete(path):

  def mutate(doc):
    target = doc
    for key in path[:-1]:
      target = target[key]
    del target[path[-1]]
    return doc

  return mutate


_P = ("data", 0, "paragraphs", 0)
_Q = _P + ("qas", 0)
_A = _Q + ("answers", 0)

_MALFORMED = [
    # (mutator, JSON path, expected text, value repr)
    (lambda doc: [doc], "<root>", 'a JSON object with a "data" list', "[{"),
    (_delete(("data",)), "data", "a list of articles",
     "nothing (the key is missing)"),
    (_set(("data",), {"a": 1}), "data", "a list of articles", "{'a': 1}"),
    (_set(("data", 0), "Normans"), "data[0]", "a JSON object", "'Normans'"),
    (_set(("data", 0, "title"), 7), "data[0].title", "a string", "7"),
    (_delete(("data", 0, "paragraphs")), "data[0].paragraphs",
     "a list of paragraphs", "nothing (the key is missing)"),
    (_set(_P, None), "data[0].paragraphs[0]", "a JSON object", "None"),
    (_set(_P + ("context",), ""), "data[0].paragraphs[0].context",
     "a non-empty string", "''"),
    (_set(_P + ("context",), ["a"]), "data[0].paragraphs[0].context",
     "a non-empty string", "['a']"),
    (_delete(_P + ("context",)), "data[0].paragraphs[0].context",
     "a non-empty string", "nothing (the key is missing)"),
    (_set(_P + ("qas",), {}), "data[0].paragraphs[0].qas",
     "a list of questions", "{}"),
    (_set(_Q, 5), _QA, "a JSON object", "5"),
    (_set(_Q + ("id",), 42), f"{_QA}.id", "a non-empty string", "42"),
    (_delete(_Q + ("id",)), f"{_QA}.id", "a non-empty string",
     "nothing (the key is missing)"),
    (_set(_Q + ("question",), "  \n"), f"{_QA}.question",
     "a non-blank string", r"'  \n'"),
    (_delete(_Q + ("question",)), f"{_QA}.question", "a non-blank string",
     "nothing (the key is missing)"),
    (_set(_Q + ("is_impossible",), "false"), f"{_QA}.is_impossible",
     "true or false", "'false'"),
    (_set(_Q + ("is_impossible",), 0), f"{_QA}.is_impossible",
     "true or false", "0"),
    (_delete(_Q + ("answers",)), f"{_QA}.answers",
     'a list of {"text", "answer_start"} objects',
     "nothing (the key is missing)"),
    (_set(_Q + ("answers",), "Normandy"), f"{_QA}.answers",
     'a list of {"text", "answer_start"} objects', "'Normandy'"),
    (_set(_A, ["Normandy", 31]), f"{_QA}.answers[0]", "a JSON object",
     "['Normandy', 31]"),
    (_set(_A + ("text",), 3), f"{_QA}.answers[0].text", "a string", "3"),
    (_set(_A + ("answer_start",), "12"), f"{_QA}.answers[0].answer_start",
     "a non-negative integer", "'12'"),
    (_set(_A + ("answer_start",), True), f"{_QA}.answers[0].answer_start",
     "a non-negative integer", "True"),
    (_set(_A + ("answer_start",), float("nan")),
     f"{_QA}.answers[0].answer_start", "a non-negative integer", "nan"),
    (_set(_A + ("answer_start",), -1), f"{_QA}.answers[0].answer_start",
     "a non-negative integer", "-1"),
    (_set(_A + ("answer_start",), 31.0), f"{_QA}.answers[0].answer_start",
     "a non-negative integer", "31.0"),
    (_delete(_A + ("answer_start",)), f"{_QA}.answers[0].answer_start",
     "a non-negative integer", "nothing (the key is missing)"),
    (_set(_Q + ("plausible_answers",), None), f"{_QA}.plausible_answers",
     'a list of {"text", "answer_start"} objects', "None"),
    (_set(_Q + ("plausible_answers",), [_answer("x", -3)]),
     f"{_QA}.plausible_answers[0].answer_start", "a non-negative integer",
     "-3"),
    (_set(_Q + ("is_impossible",), True), f"{_QA}.answers",
     "[] because is_impossible is true",
     "[{'text': 'Normandy', 'answer_start': 31}]"),
    (_set(("data", 0, "paragraphs", 0, "qas", 1, "id"), "q1"),
     "data[0].paragraphs[0].qas[1].id",
     f"a question id not already used at {_QA}.id", "'q1'"),
]


@pytest.mark.parametrize("mutate, json_path, expected, value", _MALFORMED)
def test_malformed_file_raises_one_clear_error(tmp_path, mutate, json_path,
                                               expected, value):
  path = _write(tmp_path, mutate(_valid_doc()))
  message = f"{path}: {json_path}: expected {expected}, got {value}"
  with pytest.raises(SquadFormatError, match=re.escape(message)):
    squad.load_squad_json(path)


def test_parse_squad_names_source():
  with pytest.raises(SquadFormatError,
                     match=re.escape("squad.json: data: expected a list")):
    squad.parse_squad({"data": None}, source="squad.json")


def test_duplicate_id_across_paragraphs_names_both_paths():
  doc = _valid_doc()
  doc["data"].append(copy.deepcopy(doc["data"][0]))
  with pytest.raises(SquadFormatError, match=re.escape(
      "mem: data[1].paragraphs[0].qas[0].id: expected a question id not "
      "already used at data[0].paragraphs[0].qas[0].id, got 'q1'. Give every "
      "question its own id.")):
    squad.parse_squad(doc, source="mem")


def test_not_json_names_line_and_column(tmp_path):
  path = tmp_path / "squad.json"
  path.write_text('{"data": [\n  {"title": "x",,}]}', encoding="utf-8")
  with pytest.raises(SquadFormatError, match=re.escape(
      f"{path}: line 2 column 17: expected JSON, got ',}}]}}'")):
    squad.load_squad_json(str(path))


def test_invalid_utf8_names_byte_offset(tmp_path):
  path = tmp_path / "squad.json"
  path.write_bytes(b'{"data": "caf\xe9"}')
  with pytest.raises(SquadFormatError, match=re.escape(
      f"{path}: byte 13: expected UTF-8 text, got b'\\xe9\"}}'")):
    squad.load_squad_json(str(path))


def test_long_values_are_truncated_in_messages():
  with pytest.raises(SquadFormatError) as info:
    squad.parse_squad({"data": "x" * 1000}, source="mem")
  got = str(info.value).split(", got ")[1]
  assert got.startswith("'xxx") and len(got) <= 80


def test_missing_file(tmp_path):
  path = str(tmp_path / "nope.json")
  with pytest.raises(FileNotFoundError, match=re.escape(path)):
    squad.load_squad_json(path)


# Each junk value put at each JSON path of _valid_doc(): (id, value, how an
# error shows it).
_JUNK = [("null", None, "None"), ("1", 1, "1"), ("-1", -1, "-1"),
         ("true", True, "True"), ('"x"', "x", "'x'"), ('""', "", "''"),
         ("[]", [], "[]"), ("{}", {}, "{}"), ("[1]", [1], "[1]")]
_MISSING_KEY = "nothing (the key is missing)"
_QA1 = "data[0].paragraphs[0].qas[1]"


def _example(qid, **changes):
  """_valid_doc()'s example `qid` ("q1" answerable, "q2" impossible)."""
  answers = ({"answer_texts": ("Normandy",), "answer_starts": (31,)}
             if qid == "q1" else
             {"answer_texts": (), "answer_starts": (), "is_impossible": True})
  return dataclasses.replace(
      SquadExample(id=qid, title="Normans", question="Where?",
                   context=_CONTEXT, **answers), **changes)


def _parsed(*examples, **report):
  """A parse that succeeds: its examples and its report's non-empty parts."""
  num_answers = sum(len(e.answer_texts) for e in examples)
  return ("parsed", examples, dataclasses.replace(
      _empty_report("<memory>", len(examples), num_answers), **report))


def _refused(json_path, expected, got, fix=""):
  message = f"<memory>: {json_path}: expected {expected}, got {got}"
  return ("refused", f"{message}. {fix}" if fix else message)


_VALID = _parsed(_example("q1"), _example("q2"))
_Q1_DROPPED = dict(dropped_examples={"no_valid_answer": 1},
                   dropped_example_ids={"no_valid_answer": ("q1",)})


# Which junk each JSON path accepts and what it then parses to; the others
# are refused there with "expected <what the path holds>". An object given
# as {} is refused at its first required key; a list given as [1] at its
# first item.
_FUZZ_TABLE = [
    ((), "<root>", 'a JSON object with a "data" list',
     "Pass an official SQuAD v1.1 or v2.0 file.",
     {"{}": _refused("data", "a list of articles", _MISSING_KEY)}),
    # Not read at all: every value is accepted.
    (("version",), "version", None, "",
     {junk_id: _VALID for junk_id, _, _ in _JUNK}),
    (("data",), "data", "a list of articles", "",
     {"[]": _parsed(),
      "[1]": _refused("data[0]", "a JSON object", "1")}),
    (("data", 0), "data[0]", "a JSON object", "",
     {"{}": _refused("data[0].paragraphs", "a list of paragraphs",
                     _MISSING_KEY)}),
    (("data", 0, "title"), "data[0].title", "a string", "",
     {'"x"': _parsed(_example("q1", title="x"), _example("q2", title="x")),
      '""': _parsed(_example("q1", title=""), _example("q2", title=""))}),
    (_P[:-1], "data[0].paragraphs", "a list of paragraphs", "",
     {"[]": _parsed(),
      "[1]": _refused("data[0].paragraphs[0]", "a JSON object", "1")}),
    (_P, "data[0].paragraphs[0]", "a JSON object", "",
     {"{}": _refused("data[0].paragraphs[0].context", "a non-empty string",
                     _MISSING_KEY)}),
    (_P + ("context",), "data[0].paragraphs[0].context",
     "a non-empty string", "",
     # "Normandy" is not in "x": q1 loses its only answer.
     {'"x"': _parsed(_example("q2", context="x"),
                     dropped_answers={"text_not_in_context": 1},
                     dropped_answer_ids={"text_not_in_context": ("q1",)},
                     **_Q1_DROPPED)}),
    (_P + ("qas",), "data[0].paragraphs[0].qas", "a list of questions", "",
     {"[]": _parsed(),
      "[1]": _refused(_QA, "a JSON object", "1")}),
    (_Q, _QA, "a JSON object", "",
     {"{}": _refused(f"{_QA}.id", "a non-empty string", _MISSING_KEY)}),
    (_Q + ("id",), f"{_QA}.id", "a non-empty string", "",
     {'"x"': _parsed(_example("q1", id="x"), _example("q2"))}),
    (_Q + ("question",), f"{_QA}.question", "a non-blank string", "",
     {'"x"': _parsed(_example("q1", question="x"), _example("q2"))}),
    (_Q + ("answers",), f"{_QA}.answers",
     'a list of {"text", "answer_start"} objects', "",
     {"[]": _parsed(_example("q2"), dropped_examples={"no_answers": 1},
                    dropped_example_ids={"no_answers": ("q1",)}),
      "[1]": _refused(f"{_QA}.answers[0]", "a JSON object", "1")}),
    (_A, f"{_QA}.answers[0]", "a JSON object", "",
     {"{}": _refused(f"{_QA}.answers[0].text", "a string", _MISSING_KEY)}),
    (_A + ("text",), f"{_QA}.answers[0].text", "a string", "",
     {'"x"': _parsed(_example("q2"),
                     dropped_answers={"text_not_in_context": 1},
                     dropped_answer_ids={"text_not_in_context": ("q1",)},
                     **_Q1_DROPPED),
      '""': _parsed(_example("q2"),
                    dropped_answers={"empty_answer_text": 1},
                    dropped_answer_ids={"empty_answer_text": ("q1",)},
                    **_Q1_DROPPED)}),
    # 1 is an offset: "Normandy" is realigned to its one occurrence, 31.
    (_A + ("answer_start",), f"{_QA}.answers[0].answer_start",
     "a non-negative integer", "",
     {"1": _parsed(_example("q1"), _example("q2"), num_realigned=1,
                   realigned_ids=("q1",))}),
    (_Q + ("is_impossible",), f"{_QA}.is_impossible", "true or false", "",
     {"true": _refused(
         f"{_QA}.answers", "[] because is_impossible is true",
         "[{'text': 'Normandy', 'answer_start': 31}]",
         'Move these answers to "plausible_answers" or set "is_impossible" '
         'to false.')}),
    (_Q[:-1] + (1,), _QA1, "a JSON object", "",
     {"{}": _refused(f"{_QA1}.id", "a non-empty string", _MISSING_KEY)}),
    (_Q[:-1] + (1, "id"), f"{_QA1}.id", "a non-empty string", "",
     {'"x"': _parsed(_example("q1"), _example("q2", id="x"))}),
    (_Q[:-1] + (1, "question"), f"{_QA1}.question", "a non-blank string", "",
     {'"x"': _parsed(_example("q1"), _example("q2", question="x"))}),
    # q2's own value ([], true) is accepted as it was.
    (_Q[:-1] + (1, "answers"), f"{_QA1}.answers",
     'a list of {"text", "answer_start"} objects', "",
     {"[]": _VALID,
      "[1]": _refused(f"{_QA1}.answers[0]", "a JSON object", "1")}),
    (_Q[:-1] + (1, "is_impossible"), f"{_QA1}.is_impossible",
     "true or false", "", {"true": _VALID}),
    # Plausible answers are checked for shape only: they are not aligned.
    (_Q[:-1] + (1, "plausible_answers"), f"{_QA1}.plausible_answers",
     'a list of {"text", "answer_start"} objects', "",
     {"[]": _VALID,
      "[1]": _refused(f"{_QA1}.plausible_answers[0]", "a JSON object", "1")}),
    (_Q[:-1] + (1, "plausible_answers", 0), f"{_QA1}.plausible_answers[0]",
     "a JSON object", "",
     {"{}": _refused(f"{_QA1}.plausible_answers[0].text", "a string",
                     _MISSING_KEY)}),
    (_Q[:-1] + (1, "plausible_answers", 0, "text"),
     f"{_QA1}.plausible_answers[0].text", "a string", "",
     {'"x"': _VALID, '""': _VALID}),
    (_Q[:-1] + (1, "plausible_answers", 0, "answer_start"),
     f"{_QA1}.plausible_answers[0].answer_start", "a non-negative integer",
     "", {"1": _VALID}),
]


def test_fuzz_table_covers_every_json_path_of_the_valid_doc():
  assert [row[0] for row in _FUZZ_TABLE] == list(json_paths(_valid_doc()))


@pytest.mark.parametrize("path, json_path, expected, fix, exceptions",
                         _FUZZ_TABLE, ids=[row[1] for row in _FUZZ_TABLE])
def test_any_junk_value_anywhere_is_parsed_or_refused_exactly(
    path, json_path, expected, fix, exceptions):
  got, want = {}, {}
  for junk_id, junk, shown in _JUNK:
    doc = junk if not path else _set(path, copy.deepcopy(junk))(_valid_doc())
    try:
      parsed = squad.parse_squad(doc)
      got[junk_id] = ("parsed", parsed.examples, parsed.report)
    except SquadFormatError as e:  # Nothing else (KeyError, TypeError...).
      got[junk_id] = ("refused", str(e))
    want[junk_id] = (exceptions[junk_id] if junk_id in exceptions else
                     _refused(json_path, expected, shown, fix))
  assert got == want


# Public helpers and example validation.


def test_answerable_only_and_gold_answers():
  loaded = squad.parse_squad(_valid_doc())
  answerable = squad.answerable_only(loaded)
  assert [ex.id for ex in answerable.examples] == ["q1"]
  assert not answerable.has_impossible
  assert answerable.report.num_examples == 1
  assert answerable.report.dropped_examples == {"is_impossible": 1}
  assert answerable.report.dropped_example_ids == {"is_impossible": ("q2",)}
  assert squad.gold_answers(loaded.examples) == {"q1": ["Normandy"], "q2": []}
  assert squad.answerable_only(answerable) is answerable


def test_example_rejects_mismatched_answers():
  with pytest.raises(ValueError, match=r"Received: 1 answer_texts and 0 "):
    SquadExample(id="a", title="", question="q", context="c",
                 answer_texts=("c",), answer_starts=())
  with pytest.raises(ValueError, match=r"is_impossible=True with "
                     r"answer_texts=\('c',\)"):
    SquadExample(id="a", title="", question="q", context="c",
                 answer_texts=("c",), answer_starts=(0,), is_impossible=True)


# TFDS route (offline: mocked data or an empty data_dir).


def _v1_record(qid, context, text, start, question="Where?"):
  return {"id": qid, "title": "T", "context": context, "question": question,
          "answers": {"text": [text], "answer_start": [start]}}


def _v2_record(qid, context, answers=(), plausible=(), is_impossible=False):
  return {"id": qid, "title": "T", "context": context, "question": "Where?",
          "is_impossible": is_impossible,
          "answers": {"text": [t for t, _ in answers],
                      "answer_start": [s for _, s in answers]},
          "plausible_answers": {"text": [t for t, _ in plausible],
                                "answer_start": [s for _, s in plausible]}}


def _as_dataset_fn(records):
  """Returns a mock `_as_dataset` yielding `records`, typed by the builder."""

  def as_dataset(self, *args, **kwargs):
    del args, kwargs
    signature = tf.nest.map_structure(
        lambda info: tf.TensorSpec(info.shape, info.tf_dtype),
        self.info.features.get_tensor_info())
    return tf.data.Dataset.from_generator(lambda: iter(records),
                                          output_signature=signature)

  return as_dataset


def test_tfds_v1_exact_examples_through_json_validation():
  records = [
      _v1_record("a", "Zürich is in Switzerland.", "Switzerland", 12),
      _v1_record("b", "one two one", "one", 7),
      _v1_record("c", "no match", "zebra", 0),
  ]
  with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn(records)):
    got = squad.load_tfds_squad("squad/v1.1", split="train")
  assert got.examples == (
      SquadExample(id="a", title="T", question="Where?",
                   context="Zürich is in Switzerland.",
                   answer_texts=("Switzerland",), answer_starts=(13,)),
      SquadExample(id="b", title="T", question="Where?", context="one two one",
                   answer_texts=("one",), answer_starts=(8,)),
  )
  assert got.report == LoadReport(
      source="tfds:squad/v1.1[train]", num_examples=2, num_answers=2,
      num_realigned=2, realigned_ids=("a", "b"),
      dropped_answers={"text_not_in_context": 1},
      dropped_answer_ids={"text_not_in_context": ("c",)},
      dropped_examples={"no_valid_answer": 1},
      dropped_example_ids={"no_valid_answer": ("c",)})


def test_tfds_v2_exact_examples():
  records = [
      _v2_record("a", "Paris is in France.", answers=[("France", 12)]),
      _v2_record("b", "Paris is in France.", plausible=[("Paris", 0)],
                 is_impossible=True),
  ]
  with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn(records)):
    got = squad.load_tfds_squad("squad/v2.0", split="validation")
  assert got.examples[1] == SquadExample(
      id="b", title="T", question="Where?", context="Paris is in France.",
      answer_texts=(), answer_starts=(), is_impossible=True)
  assert got.examples[0].answer_starts == (12,)
  assert got.has_impossible
  assert got.report == _empty_report("tfds:squad/v2.0[validation]",
                                     num_examples=2, num_answers=1)


@pytest.mark.parametrize(
    "record, message",
    [
        (_v2_record("a", "x", answers=[("x", 0)], is_impossible=True),
         "examples[0].answers: expected [] because is_impossible is true, "
         "got [{'text': 'x', 'answer_start': 0}]"),
        (_v2_record("a", ""), "examples[0].context: expected a non-empty "
         "string, got ''"),
        (_v2_record(b"a\xff", "x"), "examples[0].id: expected UTF-8 text, got "
         "b'a\\xff'"),
    ])
def test_tfds_records_share_json_validation(record, message):
  with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn([record])):
    with pytest.raises(SquadFormatError, match=re.escape(
        f"tfds:squad/v2.0[train]: {message}")):
      squad.load_tfds_squad("squad/v2.0", split="train")


def test_tfds_duplicate_ids_rejected():
  records = [_v1_record("a", "x y", "x", 0), _v1_record("a", "x y", "y", 2)]
  with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn(records)):
    with pytest.raises(SquadFormatError, match=re.escape(
        "examples[1].id: expected a question id not already used at "
        "examples[0].id, got 'a'")):
      squad.load_tfds_squad("squad/v1.1", split="train")


@pytest.mark.parametrize("name", config.TFDS_NAMES)
def test_tfds_random_mock_data_is_rejected_as_malformed(name):
  # mock_data draws every feature independently: answer texts and starts have
  # different lengths and never align, so validation must reject the records.
  with tfds.testing.mock_data(num_examples=5):
    with pytest.raises(SquadFormatError, match=re.escape(
        f"tfds:{name}[validation]: examples[")):
      squad.load_tfds_squad(name, split="validation")


def test_tfds_absent_data_explains_fix(tmp_path):
  message = (f"TFDS dataset squad/v2.0 (split 'validation') is not prepared "
             f"in data_dir='{tmp_path}', and download=False. Expected a "
             f"prepared copy. To fix: run `tfds build squad/v2.0 "
             f"--data_dir={tmp_path}` on a machine with network, or pass "
             f"--tfds_data_dir pointing at a prepared copy, or use "
             f"--train_file with a local SQuAD JSON.")
  with pytest.raises(ValueError, match=re.escape(message)):
    squad.load_tfds_squad("squad/v2.0", split="validation",
                         data_dir=str(tmp_path))


@pytest.mark.parametrize("name", ["squad", "squad/v1.0", "glue/cola"])
def test_tfds_rejects_other_names(name):
  with pytest.raises(ValueError, match=re.escape(
      f"Received: name={name!r}. Expected one of squad/v1.1, squad/v2.0.")):
    squad.load_tfds_squad(name, split="train")


# Real data.


@pytest.mark.skipif(not _SAMPLE_PATH.exists(),
                    reason=f"shared SQuAD v2.0 dev sample not found at "
                    f"{_SAMPLE_PATH} (only present in the tfqa workplace)")
def test_real_squad_v2_dev_sample():
  loaded = squad.load_squad_json(str(_SAMPLE_PATH))
  assert len(loaded.examples) == 1407
  assert sum(ex.is_impossible for ex in loaded.examples) == 702
  assert loaded.report.num_realigned == 0
  assert loaded.report.dropped_answers == {}
  assert loaded.report.dropped_examples == {}
  assert len(squad.answerable_only(loaded).examples) == 705
  gold = squad.gold_answers(loaded.examples)
  assert gold["56ddde6b9a695914005b9628"] == ["France"] * 4
