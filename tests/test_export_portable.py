"""Tests for tfqa.export.portable and tfqa_export --onnx/--quantize: conversion, parity, quantized reports, the quality gate."""

import json
import os
import re
import sys
import warnings

import numpy as np
import pytest

from tfqa import config
from tfqa import export
from tfqa.data import squad
from tfqa.export import portable as portable_lib
from tfqa.inference import logits as logits_lib

from conftest import needs_onnx, onnx_tiny_export, run_python, tiny_train_flags

_run = run_python


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_files):
  return onnx_tiny_export(tmp_path_factory, tiny_files)


@pytest.fixture(scope="module")
def manifest(exported):
  with open(os.path.join(exported[1], "manifest.json")) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def probe(tiny_files):
  return squad.load_squad_json(tiny_files["train_v1"]).examples


def _too_coarse_weights(float_path, output_path):
  """A far too aggressive setting: a quantization step wider than any weight.

  Every weight tensor (embeddings and matmuls; not the small LayerNorm and
  bias vectors) rounds to 0, so the model answers every question alike.
  """
  import onnx  # pylint: disable=import-outside-toplevel
  from onnx import numpy_helper  # pylint: disable=import-outside-toplevel

  model = onnx.load(float_path)
  for tensor in model.graph.initializer:
    weights = numpy_helper.to_array(tensor)
    if weights.dtype == np.float32 and weights.size >= 64:
      step = 4 * np.abs(weights).max()
      tensor.CopyFrom(numpy_helper.from_array(
          (np.round(weights / step) * step).astype(np.float32), tensor.name))
  onnx.save(model, output_path)


def _example(qid, answers=()):
  return squad.SquadExample(id=qid, title="", question="q?", context="a b c",
                           answer_texts=tuple(answers),
                           answer_starts=tuple(0 for _ in answers),
                           is_impossible=not answers)


def test_probe_scores_v1_skips_unanswerable_v2_counts_them():
  examples = [_example("a", ["a b"]), _example("b", ["c"]), _example("n")]
  texts = {"a": "a b", "b": "b", "n": ""}
  assert portable_lib.probe_scores(examples, texts, version_2=False) == {
      "exact": 50.0, "f1": 50.0, "questions": 2}
  assert portable_lib.probe_scores(examples, texts, version_2=True) == {
      "exact": 66.6667, "f1": 66.6667, "questions": 3}
  with pytest.raises(ValueError, match="no answerable question"):
    portable_lib.probe_scores([_example("n")], {"n": ""}, version_2=False)


def test_quality_report_and_gate():
  examples = [_example("a", ["a b"]), _example("b", ["c"])]
  report = portable_lib.quality_report(
      examples, float_texts={"a": "a b", "b": "c"},
      quantized_texts={"a": "a b", "b": "b"}, float_bytes=1000,
      quantized_bytes=300, version_2=False, max_f1_drop=1.0)
  assert report == {
      "size_bytes": 300, "float_size_bytes": 1000, "size_ratio": 3.333,
      "probe_float": {"exact": 100.0, "f1": 100.0, "questions": 2},
      "probe_quantized": {"exact": 50.0, "f1": 50.0, "questions": 2},
      "f1_drop": 50.0, "max_f1_drop": 1.0, "answer_agreement": 0.5,
      "answers_changed": 1, "within_quality_bound": False}
  quantized = {"onnx_int8": report, "tflite_int8": {"skipped": "why"}}
  assert portable_lib.check_quality(quantized, max_f1_drop=1.0,
                                   allow_quality_drop=False) == [
      "onnx_int8: F1 50.00 vs float 100.00 on 2 probe questions, a drop of "
      "50.00 points > 1"]
  assert portable_lib.check_quality(quantized, max_f1_drop=1.0,
                                   allow_quality_drop=True) == []
  assert portable_lib.check_quality(quantized, max_f1_drop=50.0,
                                   allow_quality_drop=False) == []


def test_missing_extra_is_named(monkeypatch):
  monkeypatch.setitem(sys.modules, "tf2onnx", None)
  with pytest.raises(ImportError, match=r"needs the `onnx` extra .*"
                     r"pip install -c constraints.txt 'tfqa\[onnx\]'"):
    portable_lib.convert_saved_model("unused", "unused.onnx")


@needs_onnx
@pytest.mark.slow
def test_layout_and_manifest(exported, manifest):
  _, export_dir = exported
  assert sorted(os.listdir(export_dir)) == [
      ".tfqa-export", "manifest.json", "onnx", "pretrained", "saved_model",
      "tflite"]
  assert sorted(os.listdir(os.path.join(export_dir, "onnx"))) == [
      "model.int8.onnx", "model.onnx"]
  assert os.listdir(os.path.join(export_dir, "tflite")) == [
      "model.int8.tflite"]
  portable = manifest["portable"]
  assert portable["paths"] == {"onnx": "onnx/model.onnx",
                               "onnx_int8": "onnx/model.int8.onnx",
                               "tflite_int8": "tflite/model.int8.tflite"}
  for name in ("onnx", "tflite"):
    assert manifest["sha256"][name] == export.file_digests(
        os.path.join(export_dir, name))
  assert portable["opset"] == 17
  assert portable["dynamic_axes"] == ["batch", "sequence"]
  assert set(portable["versions"]) == {"tf2onnx", "onnx", "onnxruntime"}
  parity = portable["parity"]
  assert parity["probe_questions"] == 8 and parity["probe_windows"] >= 8
  assert parity["passed"] is True
  assert 0 <= parity["logits_max_abs_diff_vs_saved_model"] <= 1e-4
  assert portable["allow_quality_drop"] is True


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("name, path", [
    ("onnx_int8", "onnx/model.int8.onnx"),
    ("tflite_int8", "tflite/model.int8.tflite")])
def test_quantized_reports(exported, manifest, name, path):
  _, export_dir = exported
  portable = manifest["portable"]
  report = portable["quantized"][name]
  size = os.path.getsize(os.path.join(export_dir, *path.split("/")))
  float_size = os.path.getsize(os.path.join(export_dir, "onnx", "model.onnx"))
  assert (report["size_bytes"], report["float_size_bytes"]) == (size,
                                                                float_size)
  assert report["size_ratio"] == round(float_size / size, 3)
  assert report["probe_float"] == portable["probe_float"]
  assert report["probe_float"]["questions"] == 8
  assert report["f1_drop"] == round(report["probe_float"]["f1"] -
                                    report["probe_quantized"]["f1"], 4)
  assert report["within_quality_bound"] == (report["f1_drop"] <= 1.0)
  assert report["answers_changed"] == round(
      8 * (1 - report["answer_agreement"]))


@needs_onnx
@pytest.mark.slow
def test_onnx_graph_has_dynamic_axes_and_matches_predict_logits(exported):
  import onnx  # pylint: disable=import-outside-toplevel

  _, export_dir = exported
  path = os.path.join(export_dir, "onnx", "model.onnx")
  model = onnx.load(path)
  assert model.opset_import[0].version == 17

  def describe(values):
    return {v.name: (v.type.tensor_type.elem_type,
                     [d.dim_param for d in v.type.tensor_type.shape.dim])
            for v in values}

  int32, float32 = onnx.TensorProto.INT32, onnx.TensorProto.FLOAT
  assert describe(model.graph.input) == {
      name: (int32, ["batch", "sequence"])
      for name in ("input_ids", "attention_mask", "token_type_ids")}
  assert describe(model.graph.output) == {
      name: (float32, ["batch", "sequence"])
      for name in ("start_logits", "end_logits")}
  saved_model = logits_lib.saved_model_logits_fn(
      os.path.join(export_dir, "saved_model", "tfqa", "1"))
  ort = logits_lib.onnx_logits_fn(logits_lib.onnx_session(path))
  rng = np.random.default_rng(3)
  for batch, length in ((1, 5), (3, 32), (6, 17)):
    ids = rng.integers(5, 90, (batch, length)).astype(np.int32)
    mask = (np.arange(length) < length - 2).astype(np.int32)[None].repeat(
        batch, 0)
    types = (np.arange(length) >= length // 2).astype(np.int32)[None].repeat(
        batch, 0)
    for want, got in zip(saved_model(ids, mask, types),
                         ort(ids, mask, types)):
      assert got.shape == (batch, length)
      np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@needs_onnx
@pytest.mark.slow
def test_quality_gate_refuses_a_too_aggressive_setting(exported, tmp_path):
  model_dir, _ = exported
  too_coarse = export.ExportHooks(quantize_onnx=_too_coarse_weights)
  out = tmp_path / "export"
  with pytest.raises(portable_lib.PortableExportError) as raised:
    export.export_model(model_dir=model_dir, export_dir=str(out),
                        verify=False, portable=config.PortableConfig(
                            quantize="int8"), hooks=too_coarse)
  report = raised.value.report["quantized"]["onnx_int8"]
  assert report["f1_drop"] > 1.0
  assert re.search(
      rf"onnx_int8: F1 {report['probe_quantized']['f1']:.2f} vs float "
      rf"{report['probe_float']['f1']:.2f} on 8 probe questions, a drop of "
      rf"{report['f1_drop']:.2f} points > 1\b.*Nothing was published\. Pass "
      rf"--allow_quality_drop", str(raised.value))
  # Nothing was published: no version, no onnx/, no manifest.
  assert sorted(os.listdir(out)) == ["saved_model"]
  assert export.existing_versions(str(out / "saved_model" / "tfqa")) == []

  result = export.export_model(
      model_dir=model_dir, export_dir=str(out), verify=False,
      portable=config.PortableConfig(quantize="int8",
                                     allow_quality_drop=True),
      hooks=too_coarse)
  assert result.portable["quantized"]["onnx_int8"]["f1_drop"] == report[
      "f1_drop"]
  assert result.portable["quantized"]["onnx_int8"][
      "within_quality_bound"] is False
  assert os.path.isfile(out / "onnx" / "model.int8.onnx")

  # A later export without ONNX leaves no stale onnx/ or tflite/ behind.
  export.export_model(model_dir=model_dir, export_dir=str(out), verify=False)
  assert sorted(os.listdir(out)) == [".tfqa-export", "manifest.json",
                                     "pretrained", "saved_model"]


@needs_onnx
@pytest.mark.slow
def test_unconvertible_op_is_named(exported, tmp_path):
  # Without the Erfc rewrite, tf2onnx leaves TF 2.21's exact-GELU op as is.
  with pytest.raises(ValueError, match=r"left TensorFlow ops without an ONNX "
                     r"equivalent .*\['Erfc'\]"):
    portable_lib.convert_saved_model(
        os.path.join(exported[1], "saved_model", "tfqa", "1"),
        str(tmp_path / "model.onnx"), op_handlers={})
  assert not os.path.exists(tmp_path / "model.onnx")


@needs_onnx
@pytest.mark.slow
def test_cli_export_with_onnx(exported, tmp_path):
  model_dir, _ = exported
  proc = _run(["-m", "tfqa.cli.export", f"--model_dir={model_dir}",
               f"--export_dir={tmp_path}/export", "--onnx", "--noverify"])
  result = json.loads(proc.stdout)
  assert result["portable"]["paths"] == {"onnx": "onnx/model.onnx"}
  assert result["portable"]["quantized"] == {}
  assert os.listdir(tmp_path / "export" / "onnx") == ["model.onnx"]


def test_cli_help_lists_the_onnx_flags():
  proc = _run(["-m", "tfqa.cli.export", "--help"])
  output, verification = proc.stdout.split("Output:")[1].split(
      "Verification:")
  assert "--onnx (default: False)" in output
  assert "--quantize" in output
  assert "--allow_quality_drop (default: False)" in verification


def test_cli_rejects_an_unknown_quantize_mode():
  proc = _run(["-m", "tfqa.cli.export", "--model_dir=m", "--export_dir=e",
               "--quantize=int4"], expect_fail=True)
  assert "tfqa_export: error:" in proc.stderr
  assert "int4" in proc.stderr


def test_the_tflite_model_loads_without_tfs_interpreter_warning(exported):
  _, export_dir = exported
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    logits_fn = logits_lib.tflite_logits_fn(
        os.path.join(export_dir, "tflite", "model.int8.tflite"))
  assert [str(w.message) for w in caught] == []
  start, end = logits_fn([[2, 5, 3]], [[1, 1, 1]], [[0, 0, 1]])
  assert start.shape == end.shape == (1, 3)
