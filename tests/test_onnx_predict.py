"""Tests for tfqa.onnx_predict and tfqa_predict --onnx_model: batching, paths, manifest check, answers equal the SavedModel's."""

import json
import os
import re
import shutil

import numpy as np
import pytest

from tfqa import config
from tfqa import data
from tfqa import features
from tfqa import modeling
from tfqa import onnx_predict
from tfqa import predict

from conftest import needs_onnx, onnx_tiny_export, run_python

LONG_CONTEXT = " ".join(
    ["the river town is where the keeper was in 1901 ."] * 6 +
    ["paris is the capital city of france ."] +
    ["bread was built in the town of the river ."] * 3)
QUESTIONS = ["what is the capital of france ?", "who built the town ?",
             "what was built ?", "", "when was the keeper in the town ?"]
CONTEXTS = ["paris is the capital city of france .",
            "the lighthouse keeper built the town in 1887 .", LONG_CONTEXT,
            "bread was built in the town of the river .", ""]


_run = run_python


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_files):
  return onnx_tiny_export(tmp_path_factory, tiny_files)


@pytest.fixture
def export_copy(exported, tmp_path):
  copy = tmp_path / "export"
  shutil.copytree(exported[1], copy)
  return str(copy)


def test_length_sorted_batches_group_by_length_and_unpad(tokenizer):
  examples = [data.SquadExample(id=str(i), title="", question=q, context=c,
                                answer_texts=(), answer_starts=())
              for i, (q, c) in enumerate(zip(QUESTIONS, CONTEXTS))]
  windows = features.build_features(
      examples, tokenizer, config.FeatureConfig(
          max_seq_length=32, doc_stride=8, max_query_length=12))
  calls = []

  def logits_fn(ids, mask, types):
    calls.append(ids.shape)
    assert ids.dtype == mask.dtype == types.dtype == np.int32
    # Padding is id 0, mask 0, type 0.
    np.testing.assert_array_equal(mask, (ids != 0).astype(np.int32))
    return ids * 1.0 + types * 1000.0, -ids * 1.0

  starts, ends = modeling.window_logits(
      logits_fn, windows, modeling.length_sorted_batches(windows, batch_size=4))
  assert len(starts) == len(windows) > 4
  for w in range(len(windows)):
    np.testing.assert_array_equal(
        starts[w], windows.input_ids[w] + windows.token_type_ids[w] * 1000.0)
    np.testing.assert_array_equal(ends[w], -windows.input_ids[w] * 1.0)
  lengths = sorted(windows.lengths)
  assert [rows for rows, _ in calls] == [
      min(4, len(lengths) - lo) for lo in range(0, len(lengths), 4)]
  assert [width for _, width in calls] == [
      max(lengths[lo:lo + 4]) for lo in range(0, len(lengths), 4)]


def test_length_sorted_batches_refuse_a_bad_batch_size(tokenizer):
  with pytest.raises(ValueError, match=r"Received: batch_size=0\. Expected a "
                     r"positive int"):
    modeling.length_sorted_batches(None, batch_size=0)


def test_resolve_errors(tmp_path):
  with pytest.raises(ValueError, match=rf"{tmp_path} has no onnx/model.onnx\. "
                     r"Export with tfqa_export --onnx"):
    onnx_predict.resolve_onnx_model(str(tmp_path))
  (tmp_path / "model.txt").write_text("")
  with pytest.raises(ValueError, match=r"model\.txt is not an \.onnx file or "
                     r"an export directory"):
    onnx_predict.resolve_onnx_model(str(tmp_path / "model.txt"))
  (tmp_path / "onnx").mkdir()
  (tmp_path / "onnx" / "model.onnx").write_text("")
  assert onnx_predict.resolve_onnx_model(str(tmp_path)) == (
      str(tmp_path / "onnx" / "model.onnx"), str(tmp_path))
  assert onnx_predict.resolve_onnx_model(
      str(tmp_path / "onnx" / "model.onnx")) == (
          str(tmp_path / "onnx" / "model.onnx"), str(tmp_path))


def test_predictor_needs_its_export_directory(tmp_path):
  (tmp_path / "onnx").mkdir()
  (tmp_path / "onnx" / "model.onnx").write_text("")
  with pytest.raises(ValueError, match=r"needs its export directory .* with "
                     r"manifest\.json \(run config\) and pretrained/"):
    onnx_predict.OnnxPredictor(str(tmp_path / "onnx" / "model.onnx"))


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx"])
def test_answers_match_the_saved_model(exported, name):
  _, export_dir = exported
  saved_model = predict.load_predictor(export_dir).answer(QUESTIONS, CONTEXTS)
  onnx_answers = onnx_predict.OnnxPredictor(
      os.path.join(export_dir, "onnx", name), verify=True).answer(
          QUESTIONS, CONTEXTS)
  assert len(onnx_answers) == len(QUESTIONS)
  if name == "model.onnx":
    for got, want in zip(onnx_answers, saved_model):
      assert (got.text, got.start_char, got.end_char) == (
          want.text, want.start_char, want.end_char)
      np.testing.assert_allclose(got.score, want.score, atol=1e-4)
  for got, context in zip(onnx_answers, CONTEXTS):
    if got.start_char >= 0:
      assert context[got.start_char:got.end_char] == got.text
    else:
      assert (got.text, got.end_char) == ("", -1)


@needs_onnx
@pytest.mark.slow
def test_export_directory_means_the_float_model(exported):
  predictor = onnx_predict.OnnxPredictor(exported[1])
  assert predictor.model_path == os.path.join(exported[1], "onnx",
                                              "model.onnx")
  assert predictor.answer([], []) == []
  with pytest.raises(ValueError, match="Got 1 questions and 0 contexts"):
    predictor.answer(["q"], [])


@needs_onnx
@pytest.mark.slow
def test_verify_refuses_a_modified_model(export_copy):
  path = os.path.join(export_copy, "onnx", "model.int8.onnx")
  with open(path, "ab") as f:
    f.write(b"\0")
  with pytest.raises(ValueError, match=r"Refusing to load .*model\.int8\.onnx: "
                     r"its files do not match .*manifest\.json: "
                     r"model\.int8\.onnx was modified \(SHA-256 "
                     r"[0-9a-f]{12}…"):
    onnx_predict.OnnxPredictor(path, verify=True)
  manifest_path = os.path.join(export_copy, "manifest.json")
  with open(manifest_path) as f:
    manifest = json.load(f)
  del manifest["sha256"]["onnx"]
  with open(manifest_path, "w") as f:
    json.dump(manifest, f)
  with pytest.raises(ValueError, match=r"model\.int8\.onnx is not in the "
                                       r"manifest"):
    onnx_predict.OnnxPredictor(path, verify=True)


@needs_onnx
@pytest.mark.slow
def test_cli_onnx_model(exported, tmp_path):
  _, export_dir = exported
  int8 = os.path.join(export_dir, "onnx", "model.int8.onnx")
  want, = onnx_predict.OnnxPredictor(int8).answer([QUESTIONS[0]],
                                                  [CONTEXTS[0]])
  proc = _run(["-m", "tfqa.cli.predict", f"--onnx_model={int8}",
               f"--question={QUESTIONS[0]}", f"--context={CONTEXTS[0]}",
               "--verify_manifest"])
  assert proc.stdout.splitlines()[0] == (
      f"answer: {want.text if want.text else '(no answer)'}")
  with open(os.path.join(export_dir, "manifest.json")) as f:
    probe = json.load(f)["probe_source"]  # the tiny v1.1 file: 8 questions
  out = tmp_path / "predictions.json"
  proc = _run(["-m", "tfqa.cli.predict", f"--onnx_model={export_dir}",
               f"--input_file={probe}", f"--output_file={out}"])
  assert json.loads(proc.stdout)["questions"] == 8
  assert len(json.loads(out.read_text())) == 8


@pytest.mark.parametrize("args,match", [
    (["--question=q", "--context=c"], "--model is required"),
    (["--model=m", "--onnx_model=o", "--question=q", "--context=c"],
     "Pass --model or --onnx_model, not both"),
    (["--onnx_model=o", "--checkpoint=c", "--question=q", "--context=c"],
     r"--checkpoint applies to training runs \(--model\), not to "
     r"--onnx_model"),
])
def test_cli_usage_errors(args, match):
  proc = _run(["-m", "tfqa.cli.predict", *args], expect_fail=True)
  assert re.search(match, proc.stderr), proc.stderr[-1000:]


def test_cli_runtime_error_names_the_path(tmp_path):
  proc = _run(["-m", "tfqa.cli.predict", f"--onnx_model={tmp_path}",
               "--question=q", "--context=c"], expect_fail=True)
  assert (f"tfqa_predict: error: {tmp_path} has no onnx/model.onnx"
          in proc.stderr)
