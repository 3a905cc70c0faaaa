"""Tests for tfqa.demo's held-out display: which questions are shown and how answers are marked."""

import json

from tfqa import demo


def _eval_file(tmp_path, count):
  squad = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{
      "context": "ctx", "qas": [
          {"id": f"q{i}", "question": f"question {i}?",
           "answers": [{"text": f"gold {i}", "answer_start": 0}]}
          for i in range(count)]}]}]}
  path = tmp_path / "eval.json"
  path.write_text(json.dumps(squad))
  return str(path)


def test_shown_questions_are_spread_over_the_file(tmp_path):
  rows = demo.shown_questions(_eval_file(tmp_path, 20), 4)
  assert [r["question"] for r in rows] == ["question 0?", "question 5?",
                                           "question 10?", "question 15?"]
  assert rows[1] == {"question": "question 5?", "context": "ctx",
                     "gold": ["gold 5"]}


def test_shown_questions_with_fewer_questions_than_asked(tmp_path):
  rows = demo.shown_questions(_eval_file(tmp_path, 3), 8)
  assert [r["question"] for r in rows] == ["question 0?", "question 1?",
                                           "question 2?"]


def test_answer_lines_mark_right_partly_and_wrong():
  rows = [{"question": "Who?", "context": "c", "gold": ["The Keeper", "x"]},
          {"question": "When?", "context": "c", "gold": ["in 1887"]},
          {"question": "Where?", "context": "c", "gold": ["Paris"]},
          {"question": "What?", "context": "c", "gold": ["bread"]}]
  lines = demo.answer_lines(rows, ["keeper", "1887", "London", ""])
  assert lines == [
      "Q: Who?\n   tfqa: keeper  [right]\n   gold: The Keeper | x",
      "Q: When?\n   tfqa: 1887  [partly]\n   gold: in 1887",
      "Q: Where?\n   tfqa: London  [wrong]\n   gold: Paris",
      "Q: What?\n   tfqa: (no answer)  [wrong]\n   gold: bread",
  ]
