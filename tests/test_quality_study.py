"""Tests for the quality study's arms, labels, migration and fold-unit report (benchmarks/quality_arms.py, quality_report.py), and that README quotes what the report prints."""

import contextlib
import io
import json
import math
import pathlib
import re
import sys

import pytest

from conftest import REPO_ROOT, run_python

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import bench_common  # pylint: disable=wrong-import-position
import quality_arms  # pylint: disable=wrong-import-position
import quality_report  # pylint: disable=wrong-import-position

RESULTS = REPO_ROOT / "benchmarks" / "results" / "quality_parity.jsonl"
STUDY = {"fold": 0, "seed": 0, "epochs": 4, "learning_rate": 1.5e-4,
         "batch_size": 16, "model": "minilm-l6", "tiny": False,
         "data": "squad_v2_dev_sample.json"}


def _settings(arm, **study):
  return quality_arms.arm_settings(arm, {**STUDY, **study})


def _key(arm, **study):
  return quality_arms.settings_key(_settings(arm, **study))


@pytest.mark.parametrize("arm", quality_arms.STUDY_ARMS)
def test_each_study_arm_is_labelled_by_its_own_spec(arm):
  assert quality_arms.arm_label(_settings(arm)) == arm


@pytest.mark.parametrize("spec,label", [
    ("tfqa+clip_norm=0", "tfqa"),  # tfqa's default: no override left
    ("tfqa+padding=dynamic+adam_epsilon=1e-8+clip_norm=1",
     quality_arms.ATTRIBUTION),
    ("recipe+max_grad_norm=0", "recipe+max_grad_norm=0.0"),
    ("recipe+max_grad_norm=1.0", "recipe"),
    ("recipe+padding=max_length", "recipe384"),
    ("recipe384+padding=longest+adam_epsilon=1e-6",
     "recipe+adam_epsilon=1e-6"),
    ("tfqa+select=last", "tfqa"),  # every run's choice so far
    ("tfqa+select=dev+num_train_epochs=6",
     "tfqa+num_train_epochs=6+select=dev"),
])
def test_a_spec_is_labelled_by_what_it_runs(spec, label):
  assert quality_arms.arm_label(_settings(spec)) == label
  assert _key(spec) == _key(label)


def test_the_unclipped_recipe_records_its_settings_and_is_its_own_run():
  settings = _settings("recipe+max_grad_norm=0")
  assert settings["kind"] == "recipe"
  assert settings["recipe"] == dict(quality_arms.RECIPE_DEFAULTS,
                                    max_grad_norm=0.0)
  assert _key("recipe+max_grad_norm=0") != _key("recipe")
  assert _settings("recipe384")["recipe"]["padding"] == "max_length"


@pytest.mark.parametrize("spec,match", [
    ("bert", r"^Invalid arm 'bert': expected tfqa, recipe or recipe384"),
    ("recipe+foo=1", r"unknown field 'foo' for a recipe arm; expected one "
                     r"of padding, max_grad_norm, adam_epsilon\.$"),
    ("tfqa+nope=1", r"unknown field 'nope' for a tfqa arm; expected a "
                    r"RunConfig field"),
    ("tfqa+clip_norm", r"'clip_norm' is not FIELD=VALUE\.$"),
    ("recipe+max_grad_norm=1+max_grad_norm=0", r"max_grad_norm is given "
                                               r"twice"),
    ("recipe+max_grad_norm=-1", r"max_grad_norm=-1; expected a number >= 0"),
    ("recipe+adam_epsilon=0", r"adam_epsilon=0; expected a number > 0"),
    ("recipe+padding=dynamic", r"padding=dynamic; expected one of "
                               r"max_length, longest"),
    ("tfqa+select=best", r"select=best; expected one of last, dev\.$"),
    ("recipe+select=dev", r"unknown field 'select' for a recipe arm"),
])
def test_parse_arm_refuses_in_one_line(spec, match):
  with pytest.raises(ValueError, match=match) as raised:
    quality_arms.parse_arm(spec)
  assert "\n" not in str(raised.value)


def test_an_override_tfqa_refuses_names_the_arm():
  with pytest.raises(ValueError, match=r"^Invalid arm 'tfqa\+clip_norm=-1'"
                                       r": tfqa's config refused it: .*"
                                       r"clip_norm=-1\. Expected >= 0"):
    _settings("tfqa+clip_norm=-1")


def test_dev_selection_is_recorded_only_where_it_is_chosen():
  # The rows recorded before the choice existed keep their keys.
  assert "selection" not in _settings("tfqa")
  assert _key("tfqa+select=last") == _key("tfqa")
  settings = _settings("tfqa+select=dev")
  assert settings["selection"] == {"select": "dev", "dev_share": 0.1,
                                   "metric": "f1"}
  assert settings["resolved"] == _settings("tfqa")["resolved"]
  assert _key("tfqa+select=dev") != _key("tfqa")


def test_carve_dev_holds_out_whole_paragraphs_by_seed(tmp_path):
  squad = {"version": "v2.0", "data": [
      {"title": f"a{a}", "paragraphs": [
          {"context": f"c{a}{p}", "qas": [{"id": f"q{a}{p}{q}"}
                                          for q in range(2)]}
          for p in range(10)]} for a in range(3)]}
  train = tmp_path / "train.json"
  train.write_text(json.dumps(squad))

  def carve(seed):
    fit, dev, count = bench_common.carve_dev(str(train), str(tmp_path),
                                             share=0.1, seed=seed)
    contexts = [[p["context"] for a in json.loads(
        pathlib.Path(f).read_text())["data"] for p in a["paragraphs"]]
                for f in (fit, dev)]
    return contexts, count

  (fit, dev), count = carve([4, 0])
  assert count == len(dev) == 3  # 10% of 30 paragraphs
  assert sorted(fit + dev) == sorted(f"c{a}{p}" for a in range(3)
                                     for p in range(10))
  assert carve([4, 0]) == ([fit, dev], 3)  # a pure function of the seed
  assert carve([4, 1])[0][1] != dev


def test_format_value_writes_values_as_a_spec_does():
  assert [quality_arms.format_value(v) for v in
          (1.0, 0.0, 1e-8, 1.5e-4, 11, "dynamic", True)] == [
              "1.0", "0.0", "1e-8", "0.00015", "11", "dynamic", "true"]


def _stale_rows():
  """The committed rows with the labels they were first written with."""
  rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
  for row in rows:
    row["arm"] = row.pop("arm_recorded", row["arm"])
  return rows


def test_migration_labels_rows_by_their_recorded_settings(tmp_path):
  path = tmp_path / "results.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in _stale_rows()) +
                  '{"cut by a ki')
  assert quality_arms.migrate_file(str(path)) == 5
  lines = path.read_text().splitlines()
  assert lines[-1] == '{"cut by a ki'  # kept as it was
  rows = [json.loads(line) for line in lines[:-1]]
  fold0 = [(r["arm_recorded"], r["arm"]) for r in rows
           if "arm_recorded" in r]
  assert fold0 == [
      # The row first labelled `tfqa` ran the old defaults.
      ("tfqa", "tfqa+clip_norm=1.0+padding=bucketed"),
      ("tfqa+clip_norm=0", "tfqa+padding=bucketed"),
      ("tfqa+padding=width_buckets", "tfqa+clip_norm=1.0"),
      ("tfqa+padding=dynamic", "tfqa+clip_norm=1.0+padding=dynamic"),
      ("tfqa+clip_norm=0+padding=width_buckets", "tfqa")]
  assert all(r["fold"] == 0 and r["seed"] == 0 for r in rows
             if "arm_recorded" in r)
  # Idempotent; nothing else changes.
  before = path.read_text()
  assert quality_arms.migrate_file(str(path)) == 0
  assert path.read_text() == before
  assert [r["settings"] for r in rows] == [r["settings"]
                                           for r in _stale_rows()]


def test_the_committed_results_file_is_migrated():
  rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
  assert quality_arms.migrate_rows(rows) == 0


def test_a_row_recorded_before_fields_were_added_keeps_its_label_and_key():
  settings = _settings("tfqa")
  older = json.loads(json.dumps(settings))
  for name in ("eval_every_steps", "keep_best",
               "gradient_accumulation_steps"):
    del older["resolved"]["train"][name]
  assert quality_arms.arm_label(older) == "tfqa"
  assert quality_arms.settings_key(older) == quality_arms.settings_key(
      settings)


def _row(arm, fold, seed, f1, speed=1.0):
  return {"arm": arm, "fold": fold, "seed": seed, "f1": f1,
          "exact_match": f1 / 2, "windows_per_second": speed,
          "heldout_title": f"article {fold}", "last_epoch_loss": 1.0}


def _cells(rows):
  return {(r["arm"], r["fold"], r["seed"]): r for r in rows}


def test_the_interval_has_folds_as_its_unit():
  rows = [_row("a", 0, 0, 50), _row("a", 0, 1, 54), _row("a", 1, 0, 40),
          _row("b", 0, 0, 48), _row("b", 0, 1, 48), _row("b", 1, 0, 39),
          _row("b", 1, 1, 30)]  # a has no fold 1 / seed 1: not a pair
  result = quality_report.fold_unit_difference(_cells(rows), "a", "b")
  # Fold 0: mean of +2 and +6; fold 1: +1. Two folds: df 1.
  assert result["fold_means"] == {0: 4.0, 1: 1.0}
  assert (result["folds"], result["pairs"]) == (2, 3)
  assert result["mean"] == 2.5
  assert result["sd"] == pytest.approx(math.sqrt(4.5))
  assert result["half"] == pytest.approx(12.706 * math.sqrt(4.5) /
                                         math.sqrt(2))
  assert quality_report.fold_unit_difference(_cells(rows), "a", "c") is None


def test_the_strongest_recipe_is_chosen_on_the_cells_all_recipes_share():
  rows = [_row("recipe", 0, 0, 30), _row("recipe", 1, 0, 10),
          _row("recipe384", 0, 0, 20), _row("recipe384", 2, 0, 90)]
  # Fold 1 and 2 are each one arm's only: only fold 0 is compared.
  best, basis = quality_report.strongest_recipe(
      _cells(rows), ["tfqa", "recipe", quality_arms.RECIPE_UNCLIPPED,
                     "recipe384"])
  assert best == "recipe"
  assert basis == ("mean F1 over the 1 fold/seed cells every measured "
                   "recipe arm has: recipe 30.00, recipe384 20.00; not "
                   "measured: recipe+max_grad_norm=0.0")


def test_the_report_names_missing_runs_and_invents_no_difference():
  rows = [_row("tfqa", 0, 0, 40), _row("recipe", 0, 0, 30)]
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    delta = quality_report.report(
        rows, ["tfqa", "recipe", quality_arms.BUDGET],
        grid=[(0, 0), (1, 0)], budget_arm=quality_arms.BUDGET)
  assert delta is None
  text = out.getvalue()
  assert re.search(r"^tfqa +recipe +1 +1 +\+10\.00 +n/a +n/a +1\.00$", text,
                   re.M)
  assert "missing tfqa: 1/0; recipe: 1/0" in text
  budget = re.escape(quality_arms.BUDGET)
  assert re.search(rf"^{budget} +recipe +no pairs; missing {budget}: all 2 "
                   rf"runs; recipe: 1/0$", text, re.M)
  assert quality_report.format_last_line(delta) == (
      "equal_wall_clock_delta_f1=nan")


def test_a_dev_selected_arm_is_compared_with_its_last_checkpoints_too():
  selected = "tfqa+num_train_epochs=6+select=dev"
  rows = [_row("tfqa+num_train_epochs=6", 0, 0, 40),
          _row("tfqa+num_train_epochs=6", 1, 0, 50)]
  for fold, f1, last in ((0, 45, 41), (1, 49, 47)):
    rows.append(dict(_row(selected, fold, 0, f1), last_f1=last,
                     last_exact_match=last - 10))
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    quality_report.report(rows, ["tfqa", "tfqa+num_train_epochs=6", selected],
                          grid=[(0, 0), (1, 0)],
                          budget_arm=quality_arms.BUDGET)
  text = out.getvalue()
  name = re.escape(selected)
  # Against the other runs: +5 and -1; against its own last checkpoints:
  # +4 and +2.
  assert re.search(rf"^{name} +tfqa\+num_train_epochs=6 +2 +2 +\+2\.00 ",
                   text, re.M)
  assert re.search(rf"^{name} +{name}@last +2 +2 +\+3\.00 ", text, re.M)
  assert (f"{selected} vs the same runs' last checkpoints; per fold: "
          f"0: +4.00, 1: +2.00") in text
  # Its last checkpoints have rows of their own in the table.
  assert re.search(rf"^ +1 +0 .* {name}@last +37\.00 +47\.00 ", text, re.M)


def _report_of_the_committed_file(*extra_args):
  proc = run_python([REPO_ROOT / "benchmarks" / "quality_parity.py",
                     f"--results={RESULTS}", "--report_only", *extra_args],
                    timeout=300, env={"PATH": "/usr/bin:/bin"},
                    clean_env=True)
  table = {}
  for line in proc.stdout.splitlines():
    m = re.match(r"^(\S+) +(\S+) +(\d+) +(\d+) +([+-]\d+\.\d+) +\S+ +"
                 r"\[ *([+-]\d+\.\d+), *([+-]\d+\.\d+)\] +(\d+\.\d+)$", line)
    if m:
      table[m.group(1), m.group(2)] = m.groups()[2:]
    m = re.match(r"^(\S+) +(\S+) +no pairs", line)
    if m:
      table[m.group(1), m.group(2)] = None
  return proc.stdout, table


def test_readme_quotes_the_figures_the_report_prints():
  stdout, table = _report_of_the_committed_file()
  readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
  # One line of single spaces: a quote may wrap anywhere in the README.
  section = " ".join(readme.split("## Answer quality", 1)[1]
                     .split("\n## ", 1)[0].split())
  folds, pairs, mean, low, high, speed = table["tfqa", "recipe"]
  assert (f"**{mean} F1** vs the upstream recipe as it ships (gradient "
          f"clipping at 1.0, each batch padded to its longest window; "
          f"{pairs} pairs over {folds} folds, 95% interval with folds as the "
          f"unit {low} to {high})") in section
  folds, pairs, mean, low, high, speed384 = table["tfqa", "recipe384"]
  assert (f"{mean} F1 vs the recipe padded to 384 ({pairs} pairs over "
          f"{folds} folds, {low} to {high})") in section
  unclipped = table.get(("tfqa", quality_arms.RECIPE_UNCLIPPED))
  if unclipped is None:
    assert ("The recipe without clipping has not been measured yet" in
            section)
  else:
    folds, pairs, mean, low, high, _ = unclipped
    assert (f"tfqa's defaults score **{mean} F1** ({pairs} pairs over {folds} "
            f"folds,") in section
    assert f"{low} to {high})" in section
  budget = table.get((quality_arms.BUDGET, quality_arms.RECIPE_UNCLIPPED))
  epochs = quality_arms.parse_arm(quality_arms.BUDGET)[1]["num_train_epochs"]
  if budget is None:
    assert "equal wall-clock has not been measured yet" in section
  else:
    folds, pairs, mean, low, high, _ = budget
    assert (f"At that recipe's wall-clock (tfqa for {epochs} epochs, ") in (
        section)
    assert (f"tfqa scores **{mean} F1** ({pairs} pairs over {folds} folds,"
            ) in section
    assert f"{low} to {high})" in section
  assert (f"{speed384}x the windows/s of the recipe padded to 384 and "
          f"{speed}x that of the recipe with per-batch padding") in (
              section)
  # Every figure the README quotes is one the report printed.
  printed = set(re.findall(r"[+-]?\d+\.\d+", stdout))
  quoted = re.findall(r"(?<![\w.])([+-]\d+\.\d+|\d+\.\d+(?=x))", readme)
  assert quoted and set(quoted) <= printed, set(quoted) - printed


def test_benchmarks_quotes_the_report_it_says_it_quotes():
  stdout, _ = _report_of_the_committed_file()
  one_seed, _ = _report_of_the_committed_file("--seeds=1")
  benchmarks = (REPO_ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
  quality = benchmarks.split("## Quality against the usual recipe", 1)[1]
  # The main report block, the first text block after "Time:", is the
  # report of the committed file, byte for byte.
  block = quality.split("Time:", 1)[1].split("```text\n", 1)[1]
  assert block.split("```", 1)[0] == stdout
  # Every signed figure of the summary is one the report, or its one-seed
  # form, prints.
  summary = quality.split("**Summary**", 1)[1].split(
      "`benchmarks/quality_parity.py` trains", 1)[0]
  signed = set(re.findall(r"(?<![\w.])[+-]\d+\.\d+", summary))
  printed = set(re.findall(r"[+-]?\d+\.\d+", stdout + one_seed))
  assert signed and signed <= printed, signed - printed


@pytest.mark.parametrize("flag, arm", [
    ("--budget_arm", "tfqa+epochs=6"),
    ("--arms", "recipe+clip_norm=1.0"),
])
def test_a_wrong_arm_is_refused_naming_the_flag_that_gave_it(flag, arm):
  proc = run_python([REPO_ROOT / "benchmarks" / "quality_parity.py",
                     f"--results={RESULTS}", "--report_only",
                     f"{flag}={arm}"], timeout=300, exit_status=1,
                    env={"PATH": "/usr/bin:/bin"}, clean_env=True)
  assert proc.stdout == ""
  assert proc.stderr.startswith(f"{flag}: Invalid arm {arm!r}: ")
  assert proc.stderr.count("\n") == 1

