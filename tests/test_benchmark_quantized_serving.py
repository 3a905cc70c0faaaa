"""Smoke test of benchmarks/quantized_serving.py: --tiny mode in a subprocess, every path timed, last line `int8_onnx_speedup=<float>`."""

import json
import re

import pytest

from conftest import REPO_ROOT, SHARED_SAMPLE, needs_onnx, run_python
from conftest import require_pretrained_model_dir

_LAST_LINE = re.compile(r"^int8_onnx_speedup=(\d+\.\d{4})$")


@needs_onnx
@pytest.mark.slow
def test_tiny_run_times_every_path_and_ends_with_the_speedup(tmp_path):
  require_pretrained_model_dir(": the benchmark uses its vocab")
  if SHARED_SAMPLE.exists():
    data_file = str(SHARED_SAMPLE)
  else:
    from tfqa.data import sample  # pylint: disable=import-outside-toplevel
    data_file = sample.sample_path()
  proc = run_python([REPO_ROOT / "benchmarks" / "quantized_serving.py",
                     "--tiny", f"--data={data_file}", f"--workdir={tmp_path}"])
  lines = proc.stdout.strip().splitlines()
  match = _LAST_LINE.match(lines[-1])
  assert match, f"last line {lines[-1]!r} is not int8_onnx_speedup=<float>"
  summary = json.loads("\n".join(lines[:-1]))
  assert sorted(summary["results"]) == ["onnx_float", "onnx_int8",
                                        "saved_model", "tflite_int8"]
  for result in summary["results"].values():
    assert result["latency_batch1"]["n"] == 4
    assert result["batch32_questions_per_second"] > 0
  saved_model = summary["results"]["saved_model"]["latency_batch1"]["p50_ms"]
  int8 = summary["results"]["onnx_int8"]["latency_batch1"]["p50_ms"]
  assert float(match.group(1)) == pytest.approx(saved_model / int8, abs=1e-4)
  assert summary["results"]["onnx_float"][
      "same_answers_as_saved_model"] == "8/8"
  quality = summary["probe_quality"]
  assert quality["parity_max_abs_diff"] <= 1e-4
  assert quality["onnx_int8"]["size_ratio"] > 1
