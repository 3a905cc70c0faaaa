"""Smoke tests of the benchmarks: each runs in --tiny mode in a subprocess; its printed figures agree with each other and with its last line `name=<float>`."""

import json
import os
import re
import socket

import pytest

from conftest import REPO_ROOT, SHARED_SAMPLE, assert_one_line_error
from conftest import require_pretrained_model_dir, run_python

# The last line every benchmark prints.
_LAST_LINE = re.compile(r"^([a-z0-9_]+)=(-?\d+(\.\d+)?([eE][-+]?\d+)?)$")


def _data_file():
  """The shared real sample when present, else the embedded sample (>= 5
  articles), so the smoke tests also run in a plain clone."""
  if SHARED_SAMPLE.exists():
    return str(SHARED_SAMPLE)
  from tfqa.data import sample
  return sample.sample_path()




def _run_tiny(script, tmp_path, *extra_args):
  """(JSON summary, last line) of a benchmark's --tiny run."""
  require_pretrained_model_dir(": the benchmarks use its vocab")
  proc = run_python([REPO_ROOT / "benchmarks" / script, "--tiny",
                     f"--data={_data_file()}", f"--workdir={tmp_path}",
                     *extra_args])
  lines = proc.stdout.strip().splitlines()
  assert _LAST_LINE.match(lines[-1]), (
      f"last line {lines[-1]!r} is not `name=<float>`")
  # The summary is printed with indent=2: its first line is "{" alone.
  first = len(lines) - 1 - lines[::-1].index("{")
  return json.loads("\n".join(lines[first:-1])), lines[-1]


def _ratio(numerator, denominator, digits):
  return round(numerator / denominator, digits)


# A last line's 4-decimal figure against the summary's 3-decimal rounding of
# the same quotient: each may be off by half its last digit (7.2045 vs 7.204
# for 7.20449 failed a bound of 5e-4 in CI).
_TWO_ROUNDINGS = 5e-4 + 5e-5 + 1e-12


@pytest.mark.slow
def test_train_throughput_tiny_figures_agree(tmp_path):
  # A training variant, a padding variant and one of both keep every
  # variant path covered; an XLA compile alone would take half a minute.
  summary, last = _run_tiny(
      "train_throughput.py", tmp_path,
      "--variants=mixed_bfloat16,width_16,mixed_bfloat16_width_16")
  runs = summary["runs"]
  assert sorted(runs) == ["recipe", "recipe384", "tfqa", "tfqa_bf16",
                          "tfqa_bf16_w16", "tfqa_w16"]
  steps, batch = summary["steps"], summary["batch_size"]
  assert (steps, batch) == (2, 4)  # --tiny
  for name, run in runs.items():
    # Every batch holds batch_size windows (tfqa completes its last batch).
    assert (run["steps"], run["windows"]) == (steps, steps * batch), name
    assert 0 <= run["real_tokens"] <= run["padded_tokens"], name
    # Printed rounded (and the recipe's real tokens, an expectation,
    # truncated to an integer).
    assert run["padding_share"] == pytest.approx(
        1 - run["real_tokens"] / run["padded_tokens"],
        abs=5e-4 + 1 / run["padded_tokens"]), name
    assert 0 <= run["padding_share"] < 1
    # Rates are counts over the fit seconds (printed rounded); the first
    # step (tracing) is the fit minus the steady-state part.
    assert run["windows_per_second"] == pytest.approx(
        run["windows"] / run["fit_seconds"], rel=0.01, abs=5e-4), name
    assert run["real_tokens_per_second"] == pytest.approx(
        run["real_tokens"] / run["fit_seconds"], rel=0.01, abs=0.05), name
    assert 0 < run["first_step_seconds"] <= run["fit_seconds"], name
    assert 0 <= run["heldout_exact_match"] <= run["heldout_f1"] <= 100
    if name.startswith("tfqa"):
      for base in ("recipe384", "recipe"):
        assert summary[f"end_to_end_speedup_vs_{base}"][name] == _ratio(
            run["windows_per_second"], runs[base]["windows_per_second"], 3)
        assert summary[f"steady_state_speedup_vs_{base}"][name] == _ratio(
            run["windows_per_second_after_first_step"],
            runs[base]["windows_per_second_after_first_step"], 3)
        assert summary[f"f1_delta_vs_{base}"][name] == round(
            run["heldout_f1"] - runs[base]["heldout_f1"], 2)
  # recipe384 pads every window to 384 tokens; the recipe each batch to its
  # longest window (an expectation), tfqa to at most 384, and both tfqa
  # runs train the same batches.
  assert runs["recipe384"]["padded_tokens"] == steps * batch * 384
  assert (runs["recipe"]["padded_tokens"] <=
          runs["recipe384"]["padded_tokens"])
  assert runs["tfqa"]["padded_tokens"] <= runs["recipe384"]["padded_tokens"]
  # A precision changes no batch; a width does (counted, not assumed).
  for count in ("real_tokens", "padded_tokens", "padding_share"):
    assert runs["tfqa_bf16"][count] == runs["tfqa"][count], count
    assert runs["tfqa_bf16_w16"][count] == runs["tfqa_w16"][count], count
  # MFU divides by the best peak of the run's own matmul precision, each
  # measured at the start, after each recipe run, before each tfqa run and
  # at the end.
  measured = {"float32": summary["matmul_gflops_measured"],
              "bfloat16": summary["matmul_gflops_measured_bfloat16"]}
  assert [len(m) for m in measured.values()] == [1 + 2 + 4 + 1] * 2
  for name, run in runs.items():
    dtype = "bfloat16" if name.startswith("tfqa_bf16") else "float32"
    assert run["mfu_peak_dtype"] == dtype, name
    # GFLOP/s and peaks are printed rounded (2 and 1 decimals).
    assert run["mfu_percent"] == pytest.approx(
        100 * run["achieved_gflops"] / max(measured[dtype]), rel=0.01,
        abs=0.05), name
  assert last == "train_speedup_vs_recipe384=%.4f" % (
      runs["tfqa"]["windows_per_second"] /
      runs["recipe384"]["windows_per_second"])
  assert float(last.split("=")[1]) == pytest.approx(
      summary["end_to_end_speedup_vs_recipe384"]["tfqa"],
      abs=_TWO_ROUNDINGS)


@pytest.mark.slow
def test_serving_latency_tiny_figures_agree(tmp_path):
  summary, last = _run_tiny("serving_latency.py", tmp_path)
  questions = summary["questions"]
  short, long = questions["short"], questions["long"]
  # --tiny: 6 short and 2 long questions; a latency set of 8, a quarter long.
  assert (short, long, questions["latency_set"]) == (6, 2, 8)
  results = summary["results"]
  assert sorted(results) == ["pipeline", "tfqa"]
  for side in results.values():
    latency = {part: side[f"latency_{part}"] for part in ("all", "short",
                                                          "long")}
    assert (latency["all"]["n"], latency["short"]["n"],
            latency["long"]["n"]) == (8, 6, 2)
    for part in latency.values():
      assert 0 < part["p50_ms"] <= part["p95_ms"]
    rates = side["batch32_questions_per_second"]
    assert sorted(rates) == ["all", "long", "short"]
    # All questions over all the seconds: between the two parts' rates.
    assert (min(rates["short"], rates["long"]) - 1e-3 <= rates["all"] <=
            max(rates["short"], rates["long"]) + 1e-3)
  for part in ("all", "short", "long"):
    tfqa, pipe = results["tfqa"], results["pipeline"]
    assert summary["p50_ratio_pipeline_over_tfqa"][part] == _ratio(
        pipe[f"latency_{part}"]["p50_ms"], tfqa[f"latency_{part}"]["p50_ms"],
        3)
    assert summary["p95_ratio_pipeline_over_tfqa"][part] == _ratio(
        pipe[f"latency_{part}"]["p95_ms"], tfqa[f"latency_{part}"]["p95_ms"],
        3)
    assert summary["throughput_ratio_tfqa_over_pipeline"][part] == _ratio(
        tfqa["batch32_questions_per_second"][part],
        pipe["batch32_questions_per_second"][part], 3)
  sizes = {"all": short + long, "short": short, "long": long}
  assert sorted(summary["identical_answers"]) == ["pipeline_defaults",
                                                  "same_rules"]
  for rules, counts in summary["identical_answers"].items():
    same = {}
    for part, size in sizes.items():
      same[part], total = map(int, counts[part].split("/"))
      assert total == size, (rules, part)
      assert counts[f"{part}_percent"] == round(100 * same[part] / size, 2)
    assert same["all"] == same["short"] + same["long"], rules
    assert len(counts["disagreements"]) == min(sizes["all"] - same["all"],
                                               20), rules
  assert last == "p50_latency_speedup=%.4f" % (
      results["pipeline"]["latency_all"]["p50_ms"] /
      results["tfqa"]["latency_all"]["p50_ms"])
  assert float(last.split("=")[1]) == pytest.approx(
      summary["p50_ratio_pipeline_over_tfqa"]["all"], abs=_TWO_ROUNDINGS)


def test_batch_plans_tiny_counts_agree(tmp_path):
  summary, last = _run_tiny("batch_plans.py", tmp_path,
                            "--bucket_widths=none,32,1")
  rows = summary["widths"]
  assert sorted(rows) == ["1", "32", "64", "none"]  # 64 always: the baseline
  assert (summary["batch_size"], summary["seeds"], summary["epochs"]) == (
      4, 3, 4)
  # Every width plans the same windows (each epoch's order is drawn before
  # any grouping), so only the padding differs.
  assert len({row["real_tokens"] for row in rows.values()}) == 1
  assert len({row["batches"] for row in rows.values()}) == 1
  for name, row in rows.items():
    assert row["padding_share"] == round(
        1 - row["real_tokens"] / row["computed_tokens"], 4), name
    assert row["tokens_vs_64"] == round(
        row["computed_tokens"] / rows["64"]["computed_tokens"], 4), name
  # Narrower buckets pad less here (a property of these plans, which are
  # fixed by the seeds); random batches pad most.
  computed = [rows[name]["computed_tokens"] for name in ("1", "32", "64",
                                                          "none")]
  assert rows["1"]["real_tokens"] < computed[0]
  assert computed == sorted(set(computed)), computed
  assert last == "padding_share_at_64=%.4f" % (
      1 - rows["64"]["real_tokens"] / rows["64"]["computed_tokens"])


def test_batch_plans_counts_a_known_plan_exactly():
  # Two short windows of one paragraph and two long ones of two others: at
  # width 64 the plan pairs the short ones (one same-paragraph pair) and the
  # long ones; width 1 pads nothing.
  script = """
import sys
import numpy as np
sys.path.insert(0, "benchmarks")
import batch_plans
lengths, paragraphs = np.array([10, 100, 10, 100]), np.array([0, 1, 0, 2])
for width in (64, 1):
  print(batch_plans.count_plans(lengths, paragraphs, bucket_width=width,
                                batch_size=2, seeds=2, epochs=3,
                                max_seq_length=384))
"""
  out = run_python(["-c", script]).stdout.strip().splitlines()
  # 6 plans of 2 batches: 2 x (10 + 10) + ... real tokens 220 per plan.
  assert out == [
      "PlanCounts(real_tokens=1320, computed_tokens=2304, "
      "same_paragraph_pairs=6, batches=12)",
      "PlanCounts(real_tokens=1320, computed_tokens=1320, "
      "same_paragraph_pairs=6, batches=12)"]


def test_batch_plans_refuses_a_bad_width_in_one_line(tmp_path):
  proc = run_python([REPO_ROOT / "benchmarks" / "batch_plans.py",
                     "--bucket_widths=64,wide", f"--workdir={tmp_path}"],
                    exit_status=1)
  assert_one_line_error(proc, (
      "batch_plans: Invalid --bucket_widths entry 'wide': expected a "
      "positive integer or none."))


@pytest.mark.slow
def test_checkpoint_overhead_tiny_figures_agree(tmp_path):
  summary, last = _run_tiny("checkpoint_overhead.py", tmp_path)
  default, small = summary["runs"]["default"], summary["runs"]["small"]
  # --tiny: 4 steps; the default interval (500) saves once, at the last
  # step; interval 2 saves at steps 2 and 4.
  assert (default["steps"], default["save_every_steps"], default["saves"]
          ) == (4, 500, 1)
  assert (small["steps"], small["save_every_steps"], small["saves"]) == (
      4, 2, 2)
  for run in (default, small):
    assert len(run["save_seconds"]) == run["saves"]
  assert summary["mean_save_seconds"] == pytest.approx(
      sum(default["save_seconds"] + small["save_seconds"]) / 3, abs=1e-3)
  assert summary["step_seconds_used"] == default[
      "mean_step_seconds_after_first"]
  # One save cost measured from the step times: the save at step 2.
  assert len(summary["save_cost_from_step_times_seconds"]) == 1
  overhead = summary["overhead_percent"]
  predicted = overhead["default_interval_500_predicted"]
  # Both predictions are save / (interval * step) of the same two times.
  assert overhead["small_interval_2_predicted"] == pytest.approx(
      predicted * 500 / 2, abs=250 * 5e-5 + 5e-4)
  assert predicted == pytest.approx(
      100 * summary["mean_save_seconds"] /
      (500 * summary["step_seconds_used"]),
      abs=5e-5 + 100 * 5e-4 / (500 * summary["step_seconds_used"]))
  assert last == "checkpoint_overhead_percent=%.4f" % predicted
  size = summary["size"]
  assert size["checkpoint_over_weights"] == _ratio(
      size["checkpoint_bytes"], size["weights_bytes"], 3)
  # The checkpoint holds the weights and AdamW's two slots for each.
  assert size["checkpoint_bytes"] > 3 * size["weights_bytes"]
  assert os.path.basename(summary["restore"]["checkpoint"]) == "ckpt-4"


@pytest.mark.slow
def test_quality_parity_tiny_resumes_from_its_results_file(tmp_path):
  require_pretrained_model_dir(": the benchmarks use its vocab")
  results = tmp_path / "results.jsonl"
  # The budget arm is the ablation here (no third tfqa run): it is paired
  # with the strongest (the only) recipe arm, the unclipped recipe.
  command = [REPO_ROOT / "benchmarks" / "quality_parity.py", "--tiny",
             f"--data={_data_file()}", f"--workdir={tmp_path / 'work'}",
             "--folds=4", "--seeds=1",
             "--arms=tfqa,recipe+max_grad_norm=0,tfqa+clip_norm=1",
             "--budget_arm=tfqa+clip_norm=1", f"--results={results}"]
  first = run_python(command)
  records = [json.loads(line) for line in results.read_text().splitlines()]
  # Labels by what ran: the spec `recipe+max_grad_norm=0` is recorded as
  # the label its settings earn.
  assert [(r["arm"], r["fold"], r["seed"]) for r in records] == [
      ("tfqa", 4, 0), ("recipe+max_grad_norm=0.0", 4, 0),
      ("tfqa+clip_norm=1.0", 4, 0)]
  assert len({r["key"] for r in records}) == 3
  for r in records:
    assert 0 <= r["exact_match"] <= r["f1"] <= 100
    assert r["windows"] == r["steps"] * 4  # tiny batch size
    assert r["windows_per_second"] == pytest.approx(
        r["windows"] / r["train_seconds"])
  # The tiny held-out article keeps 3 paragraphs of article 5.
  assert {r["heldout_title"] for r in records} == {records[0]["heldout_title"]}
  tfqa, recipe, ablation = records
  assert tfqa["settings"]["resolved"]["train"]["clip_norm"] == 0
  assert tfqa["settings"]["resolved"]["pipeline"]["padding"] == (
      "width_buckets")
  assert recipe["settings"]["recipe"]["max_grad_norm"] == 0.0
  assert recipe["settings"]["recipe"]["adam_epsilon"] == 1e-8
  assert recipe["settings"]["recipe"]["padding"] == "longest"
  assert ablation["settings"]["resolved"]["train"]["clip_norm"] == 1
  last = first.stdout.strip().splitlines()[-1]
  assert last == (f"equal_wall_clock_delta_f1="
                  f"{ablation['f1'] - recipe['f1']:.4f}")
  assert ("Strongest recipe arm: recipe+max_grad_norm=0.0 (mean F1 over "
          "the 1 fold/seed cells") in first.stdout
  # One summary row per (arm, reference) present, each one fold, one pair.
  summary = {tuple(line.split()[:2]): line.split()[2:5]
             for line in first.stdout.splitlines()
             if re.match(r"tfqa\S* +(tfqa|recipe)\S* +1 +1 ", line)}
  assert summary == {
      ("tfqa", "recipe+max_grad_norm=0.0"): [
          "1", "1", f"{tfqa['f1'] - recipe['f1']:+.2f}"],
      ("tfqa+clip_norm=1.0", "tfqa"): [
          "1", "1", f"{ablation['f1'] - tfqa['f1']:+.2f}"],
      ("tfqa+clip_norm=1.0", "recipe+max_grad_norm=0.0"): [
          "1", "1", f"{ablation['f1'] - recipe['f1']:+.2f}"]}

  # A rerun trains nothing: every run is in the results file, also one
  # recorded before tfqa had the fields added since (at their neutral value).
  lines = results.read_text().splitlines()
  older = json.loads(lines[0])
  for name in ("eval_every_steps", "keep_best", "gradient_accumulation_steps"):
    del older["settings"]["resolved"]["train"][name]
  results.write_text("\n".join([json.dumps(older), *lines[1:]]) + "\n")
  second = run_python(command)
  assert len(results.read_text().splitlines()) == 3
  # No "[  12s] tfqa fold 4 seed 0: ..." progress line: nothing trained.
  assert not [l for l in second.stdout.splitlines() if l.startswith("[")]
  assert [l for l in first.stdout.splitlines() if l.startswith("[")]
  assert second.stdout.strip().splitlines()[-1] == last

  # A run another live process has claimed (this test's own process stands
  # in for it) is skipped, not trained, and its claim is left in place.
  results.write_text("\n".join(lines[:2]) + "\n")
  claims = tmp_path / "results.jsonl.claims"  # made by the runs above
  assert [p.name for p in claims.iterdir()] == [".lock"]  # all released
  holder = {"host": socket.gethostname(), "pid": os.getpid()}
  (claims / ablation["key"]).write_text(json.dumps(holder))
  third = run_python(command)
  assert len(results.read_text().splitlines()) == 2
  assert [l.split("] ", 1)[1] for l in third.stdout.splitlines()
          if l.startswith("[")] == [
      f"tfqa+clip_norm=1.0 fold 4 seed 0: skipped, process {os.getpid()} "
      f"on {socket.gethostname()} holds it"]
  assert json.loads((claims / ablation["key"]).read_text()) == holder
  assert third.stdout.strip().splitlines()[-1] == (
      "equal_wall_clock_delta_f1=nan")


@pytest.mark.slow
def test_quality_parity_tiny_select_dev_scores_on_held_out_questions(
    tmp_path):
  require_pretrained_model_dir(": the benchmarks use its vocab")
  results = tmp_path / "results.jsonl"
  run_python([REPO_ROOT / "benchmarks" / "quality_parity.py", "--tiny",
              f"--data={_data_file()}", f"--workdir={tmp_path / 'work'}",
              "--folds=4", "--seeds=1", "--arms=tfqa+select=dev",
              f"--results={results}"])
  [row] = [json.loads(line) for line in results.read_text().splitlines()]
  assert row["arm"] == "tfqa+select=dev"
  # The tiny split trains on 5 paragraphs: one is the dev split. Its one
  # epoch is evaluated at its end, so the best checkpoint is the last one.
  assert row["dev_paragraphs"] == 1
  assert row["eval_every_steps"] == row["steps"] == row["selected_step"]
  assert (row["f1"], row["exact_match"]) == (row["last_f1"],
                                             row["last_exact_match"])
  assert 0 <= row["dev_f1"] <= 100
  assert row["train_seconds"] < row["train_and_dev_seconds"]
  # Scored on the held-out article, as every arm is.
  assert row["heldout_questions"] > 0


@pytest.mark.slow
def test_gradient_norms_tiny_matches_the_optimizer_record(tmp_path):
  require_pretrained_model_dir(": the benchmarks use its vocab")
  proc = run_python([REPO_ROOT / "benchmarks" / "gradient_norms.py",
                     "--tiny", "--batches=3", f"--data={_data_file()}"])
  lines = proc.stdout.strip().splitlines()
  table = [l.split() for l in lines if re.match(r"^\s+\d+\s", l)]
  assert [int(row[0]) for row in table] == [0, 1, 2]
  half = 5e-4  # every figure is printed with 3 decimals
  for _, _, dense, raw, ratio, embeddings, rest in table:
    dense, raw, ratio = float(dense), float(raw), float(ratio)
    # The printed quotient against the quotient of the printed figures.
    assert ratio == pytest.approx(
        dense / raw, abs=half + half * (1 + ratio) / (raw - half))
    # The dense norm splits into the embedding and the other weights.
    assert dense == pytest.approx(
        (float(embeddings) ** 2 + float(rest) ** 2) ** 0.5,
        abs=half + half * 2 ** 0.5)
  check = re.search(r"relative difference (\S+)\)", proc.stdout)
  assert float(check.group(1)) < 1e-5
  assert lines[-1].startswith("dense_over_raw_median=")


def test_gpu_check_refuses_in_one_line_without_a_gpu(tmp_path):
  proc = run_python([REPO_ROOT / "benchmarks" / "gpu_check.py",
                     f"--workdir={tmp_path / 'work'}"],
                    env={"CUDA_VISIBLE_DEVICES": ""}, exit_status=1)
  assert proc.stdout == ""
  assert_one_line_error(proc, (
      "gpu_check: TensorFlow sees no GPU on this machine "
      "(tf.config.list_physical_devices('GPU') is empty); run it on a GPU "
      "machine with tensorflow[and-cuda] installed (Colab: Runtime > Change "
      "runtime type > a GPU). Nothing was run."))
  assert not (tmp_path / "work").exists()
