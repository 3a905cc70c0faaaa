"""Tests for tfqa.evaluation.scoring and the tfqa_score entry point."""

import json

import pytest

from tfqa.evaluation import scoring

from conftest import run_python, tiny_squad


@pytest.fixture
def files(tmp_path):
  v2, v1 = tmp_path / "v2.json", tmp_path / "v1.json"
  v2.write_text(json.dumps(tiny_squad(True)))
  v1.write_text(json.dumps(tiny_squad(False)))
  return tmp_path, str(v1), str(v2)


def _write(path, obj):
  path.write_text(json.dumps(obj))
  return str(path)


def test_v1_scores_and_missing_ids(files):
  root, v1, _ = files
  # 8 answerable questions; 6 predicted right, p1q0 half right, p3q1 missing.
  predictions = {"p0q0": "paris", "p0q1": "capital city of france",
                 "p1q0": "lighthouse", "p1q1": "1887", "p2q0": "bread",
                 "p2q1": "the town of the river", "p3q0": "1901",
                 "extra": "ignored"}
  result = scoring.score_files(v1, _write(root / "p.json", predictions))
  # p1q0: "lighthouse" vs "the lighthouse keeper" -> tokens [lighthouse] vs
  # [lighthouse, keeper]: P=1, R=1/2, F1=2/3. p0q1 normalizes equal (EM 1).
  assert result["exact_match"] == pytest.approx(100 * 6 / 8)
  assert result["f1"] == pytest.approx(100 * (6 + 2 / 3) / 8)
  assert result["missing"] == 1 and result["unknown_ids"] == 1


def test_v2_scores_with_na_probs(files):
  root, _, v2 = files
  predictions = {qid: "" for qid in ("p0q2", "p1q2", "p3q2")}
  predictions.update({"p0q0": "paris", "p0q1": "france"})
  na = {qid: 0.9 if qid.endswith("q2") else 0.1 for qid in
        ["p0q0", "p0q1", "p0q2", "p1q0", "p1q1", "p1q2", "p2q0", "p2q1",
         "p3q0", "p3q1", "p3q2"]}
  result = scoring.score_files(v2, _write(root / "p.json", predictions),
                               na_prob_file=_write(root / "na.json", na))
  assert result["total"] == 11 and result["missing"] == 6
  assert result["HasAns_total"] == 8 and result["NoAns_total"] == 3
  assert result["NoAns_exact"] == 100.0
  assert result["HasAns_exact"] == pytest.approx(100 / 8)
  assert result["exact"] == pytest.approx(100 * 4 / 11)
  assert "best_f1_thresh" in result


@pytest.mark.parametrize("content,match", [
    ("[1, 2]", r"^predictions_file=.*/p\.json is not a JSON object: it starts "
               r"with '\[1, 2\]'; expected a predictions JSON file \(question "
               r"id -> answer\)\.$"),
    ('{"p0q0": 3}', r"p.json: \['p0q0'\]: expected an answer string, got 3"),
    ("{oops", r"p.json: the predictions file is not valid JSON: .* line 1"),
])
def test_bad_predictions_file_is_named(files, content, match):
  root, v1, _ = files
  path = root / "p.json"
  path.write_text(content)
  with pytest.raises(ValueError, match=match):
    scoring.score_files(v1, str(path))


def test_swapped_arguments_are_named(files):
  root, v1, _ = files
  predictions = _write(root / "predictions.json", {"p0q0": "paris"})
  with pytest.raises(ValueError, match=(
      rf"^data_file={predictions} is not a SQuAD file, but predictions_file="
      rf"{v1} looks like one \(it has 'data'\): the arguments are swapped\? "
      rf"Expected: tfqa_score DATA_FILE PREDICTIONS_FILE, e\.g\. tfqa_score "
      rf"dev\.json predictions\.json\.$")):
    scoring.score_files(predictions, v1)


def test_bad_na_prob_file_is_named(files):
  root, _, v2 = files
  with pytest.raises(ValueError, match=r"na.json: \['p0q0'\]: expected a "
                                       r"number, got 'high'"):
    scoring.score_files(v2, _write(root / "p.json", {}),
                        na_prob_file=_write(root / "na.json",
                                            {"p0q0": "high"}))


def _score_cli(*args):
  return run_python(["-m", "tfqa.cli.score", *args], exit_status=None,
                    timeout=300)


def test_cli_prints_official_keys_and_reports_missing(files):
  root, v1, v2 = files
  predictions = _write(root / "p.json", {"p0q0": "paris"})
  proc = _score_cli(v1, predictions)
  assert proc.returncode == 0, proc.stderr
  result = json.loads(proc.stdout)
  assert result["exact_match"] == pytest.approx(100 / 8)
  assert "7 question(s) of" in proc.stderr and "scored as wrong" in proc.stderr
  na = _write(root / "na.json", {"p0q0": 0.0})
  proc = _score_cli(v2, predictions, f"--na_prob_file={na}",
                    "--na_prob_thresh=0.5")
  assert proc.returncode == 0, proc.stderr
  assert {"exact", "f1", "total", "HasAns_exact", "NoAns_exact", "best_exact",
          "best_exact_thresh", "best_f1", "best_f1_thresh"} <= set(
              json.loads(proc.stdout))


def test_cli_errors(files):
  root, v1, _ = files
  proc = _score_cli(v1)
  assert proc.returncode != 0
  assert "Expected two arguments: DATA_FILE PREDICTIONS_FILE" in (
      proc.stderr + proc.stdout)
  proc = _score_cli(v1, str(root / "absent.json"))
  assert proc.returncode == 1 and "absent.json" in proc.stderr


# tfqa_score run as its console script does, then the modules it loaded.
_SCORE_THEN_LIST_MODULES = """
import sys
from tfqa.cli import score
sys.argv = ["tfqa_score", *sys.argv[1:]]
try:
  score.run()
finally:
  print(sorted({name.split(".")[0] for name in sys.modules}), file=sys.stderr)
"""


def test_cli_does_not_import_tensorflow(files):
  root, v1, _ = files
  predictions = _write(root / "p.json", {"p0q0": "paris"})
  proc = run_python(["-c", _SCORE_THEN_LIST_MODULES, v1, predictions],
                    timeout=300)
  assert json.loads(proc.stdout)["exact_match"] == pytest.approx(100 / 8)
  modules = set(json.loads(proc.stderr.splitlines()[-1].replace("'", '"')))
  assert "tfqa" in modules and "absl" in modules
  assert not modules & {"tensorflow", "tf_keras", "transformers", "numpy"}
