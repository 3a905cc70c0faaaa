"""Tests for tfqa.cli.demo: its working directory, which held-out questions are shown, how answers are marked."""

import json
import os

import pytest

from tfqa.cli import demo

from conftest import run_python


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


def test_fresh_workdir_creates_a_new_directory_with_the_marker(tmp_path):
  path = demo.fresh_workdir(str(tmp_path / "new" / "demo_run"))
  assert path == str(tmp_path / "new" / "demo_run")
  assert sorted(os.listdir(path)) == [".tfqa-demo"]


def test_fresh_workdir_empties_a_previous_demo_directory(tmp_path):
  first = demo.fresh_workdir(str(tmp_path / "d"))
  (tmp_path / "d" / "run").mkdir()
  (tmp_path / "d" / "run" / "ckpt").write_text("x")
  (tmp_path / "d" / "notes.txt").write_text("y")
  assert demo.fresh_workdir(str(tmp_path / "d")) == first
  assert sorted(os.listdir(first)) == [".tfqa-demo"]


def test_fresh_workdir_empties_a_demo_directory_from_before_the_marker(
    tmp_path):
  old = tmp_path / "demo_run"
  for name in ("run", "export"):
    (old / name).mkdir(parents=True)
  for name in ("train.json", "eval.json", "shown_questions.json"):
    (old / name).write_text("{}")
  demo.fresh_workdir(str(old))
  assert sorted(os.listdir(old)) == [".tfqa-demo"]


def test_fresh_workdir_reuses_an_empty_directory(tmp_path):
  demo.fresh_workdir(str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == [".tfqa-demo"]


@pytest.mark.parametrize("entries", [
    ["thesis.tex"],
    # The demo's names but not its train/eval split: somebody's own run.
    ["run", "export"],
    ["train.json", "eval.json", "run", "my_model.h5"],
])
def test_fresh_workdir_refuses_a_directory_it_did_not_write(tmp_path,
                                                             entries):
  for name in entries:
    (tmp_path / name).write_text("keep me")
  with pytest.raises(demo.DemoError) as e:
    demo.fresh_workdir(str(tmp_path))
  shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3
                                            else "")
  assert str(e.value) == (
      f"--workdir={tmp_path} holds {len(entries)} "
      f"{'entry' if len(entries) == 1 else 'entries'} the demo did not "
      f"write ({shown}); expected a new or empty directory, or a previous "
      f"demo's (with .tfqa-demo). Nothing was deleted.")
  assert sorted(os.listdir(tmp_path)) == sorted(entries)
  assert all((tmp_path / n).read_text() == "keep me" for n in entries)


def test_fresh_workdir_refuses_a_file(tmp_path, monkeypatch):
  (tmp_path / "f").write_text("keep me")
  monkeypatch.chdir(tmp_path)
  with pytest.raises(demo.DemoError, match=r"^--workdir=f is a file; "
                     r"expected a directory \(new, empty, or a previous "
                     r"demo's\)\.$"):
    demo.fresh_workdir("f")
  assert (tmp_path / "f").read_text() == "keep me"


def test_fresh_workdir_refuses_a_path_through_a_file_or_a_literal_tilde(
    tmp_path, monkeypatch):
  (tmp_path / "f").write_text("keep me")
  monkeypatch.chdir(tmp_path)
  with pytest.raises(demo.DemoError, match=(
      r"^--workdir=f/sub cannot be created: .*f is a file, not a "
      r"directory; expected a directory \(new, empty, or a previous "
      r"demo's\)\.$")):
    demo.fresh_workdir("f/sub")
  with pytest.raises(demo.DemoError, match=(
      r"^--workdir=~/d would be created in a directory named '~'")):
    demo.fresh_workdir("~/d")
  assert sorted(os.listdir(tmp_path)) == ["f"]


def test_demo_refuses_a_users_directory_in_one_line(tmp_path):
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "results.csv").write_text("keep me")
  proc = run_python(["-m", "tfqa.cli.demo", "--workdir=mine"], cwd=tmp_path,
                    exit_status=1, timeout=300)
  assert proc.stdout == ""
  assert proc.stderr.splitlines() == [
      "demo: error: --workdir=mine holds 1 entry the demo did not write "
      "(results.csv); expected a new or empty directory, or a previous "
      "demo's (with .tfqa-demo). Nothing was deleted."]
  assert (tmp_path / "mine" / "results.csv").read_text() == "keep me"
