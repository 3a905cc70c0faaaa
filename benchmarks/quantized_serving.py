"""Latency, throughput, size and probe-set quality of the float SavedModel, float ONNX, int8 ONNX and int8 TFLite exports of one model.

  .venv/bin/python benchmarks/quantized_serving.py [--train_steps=36]

Trains the bundled MiniLM-L6 briefly on articles 1-4 of the shared real
sample (bench_common.train_briefly), exports it with
export.export_model(verify=False, portable=PortableConfig(quantize="int8",
allow_quality_drop=True)) and the held-out article 5 as probe set (so the
manifest's EM/F1 and agreement are on held-out questions; the export's own
ONNX-vs-SavedModel parity check still runs), then answers the same held-out
questions with
  saved_model   predictor.SavedModelPredictor: serving_default (tokenizer,
                windows, model and decoding in the graph)
  onnx_float    predictor.OnnxPredictor(onnx/model.onnx): tfqa's Python
                tokenizer and windows, ONNX Runtime, tfqa span decoding
  onnx_int8     the same over onnx/model.int8.onnx
  tflite_int8   the same Python path over tflite/model.int8.tflite
                (tf.lite.Interpreter)
Every path is warmed up first; they take turns question by question
(latency) and call by call (throughput), so a change in a shared machine's
load hits all alike. Latency: one question per call, p50/p95 over
--latency_questions questions. Throughput: every held-out question in calls
of --batch_size.

Prints one JSON summary, then a last line `int8_onnx_speedup=<saved_model
p50 / onnx_int8 p50>`.
"""

import json
import os
import time

from tfqa.cli import common  # pylint: disable=unused-import  (Keras 2 setup)

from absl import app
from absl import flags

import bench_common

_FLAGS = bench_common.define_serving_flags(
    train_steps=36, latency_questions=48, timed_on="path")
# In this script's --help: its key flags.
flags.adopt_module_key_flags(bench_common)

PATHS = ("saved_model", "onnx_float", "onnx_int8", "tflite_int8")


def python_path_predictor(logits_fn, tokenizer, run_config):
  """fn(questions, contexts) -> answer texts over tfqa's Python windows."""
  from tfqa.data import squad as squad_lib  # pylint: disable=import-outside-toplevel
  from tfqa.inference import answering  # pylint: disable=import-outside-toplevel
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa.inference import predictor  # pylint: disable=import-outside-toplevel

  def answer(questions, contexts):
    examples = [squad_lib.SquadExample(id=str(i), title="", question=q,
                                      context=c, answer_texts=(),
                                      answer_starts=())
                for i, (q, c) in enumerate(zip(questions, contexts))]
    predictions = answering.answer_examples(
        examples, logits_fn, run_config, tokenizer=tokenizer,
        batch_size=config.ONNX_BATCH_SIZE).predictions
    return [predictions.by_id[e.id].text for e in examples]

  return answer


def main(argv):
  split = _FLAGS.prepare(argv, temp_prefix="tfqa-quant-bench-")
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa import export  # pylint: disable=import-outside-toplevel
  from tfqa.data import squad as squad_lib  # pylint: disable=import-outside-toplevel
  from tfqa.inference import logits as logits_lib  # pylint: disable=import-outside-toplevel
  from tfqa.inference import predictor as predictor_lib  # pylint: disable=import-outside-toplevel

  tiny, batch = _FLAGS.tiny.value, _FLAGS.batch_size.value
  workdir, heldout_file = split.workdir, split.heldout_file
  started = time.perf_counter()
  model_dir = bench_common.train_briefly(
      workdir, split.train_file, tiny=tiny,
      steps=2 if tiny else _FLAGS.train_steps.value)
  train_seconds = time.perf_counter() - started
  started = time.perf_counter()
  exported = export.export_model(
      model_dir=model_dir, export_dir=os.path.join(workdir, "export"),
      verify=False, probe_file=heldout_file,
      portable=config.PortableConfig(quantize="int8",
                                     allow_quality_drop=True))
  export_seconds = time.perf_counter() - started
  portable = exported.portable
  export_dir = os.path.dirname(exported.manifest_path)

  questions = [(e.question, e.context)
               for e in squad_lib.load_squad_json(heldout_file).examples]
  if tiny:
    questions = questions[:8]
  latency_set = questions[:4 if tiny else _FLAGS.latency_questions.value]

  onnx_float = predictor_lib.OnnxPredictor(export_dir)
  tokenizer, run_config = onnx_float.tokenizer, onnx_float.run_config
  onnx_int8 = predictor_lib.OnnxPredictor(
      os.path.join(export_dir, *portable["paths"]["onnx_int8"].split("/")))
  saved_model = predictor_lib.SavedModelPredictor(exported.saved_model_dir)

  def texts_of(predictor):
    return lambda qs, cs: [a.text for a in predictor.answer(qs, cs)]

  paths = {"saved_model": texts_of(saved_model),
           "onnx_float": texts_of(onnx_float),
           "onnx_int8": texts_of(onnx_int8)}
  if "tflite_int8" in portable["paths"]:
    paths["tflite_int8"] = python_path_predictor(
        logits_lib.tflite_logits_fn(os.path.join(
            export_dir, *portable["paths"]["tflite_int8"].split("/"))),
        tokenizer, run_config)

  # Warm-up: one-question and batched calls on every path.
  bench_common.take_turns_batched(
      paths, [[q] for q in questions[:2]] + [questions[:batch]])
  latency_seconds, _ = bench_common.take_turns_batched(
      paths, [[q] for q in latency_set])
  calls = [questions[lo:lo + batch]
           for lo in range(0, len(questions), batch)]
  call_seconds, batch_texts = bench_common.take_turns_batched(paths, calls)

  results = {}
  for name in paths:
    results[name] = {
        "latency_batch1": bench_common.percentiles(latency_seconds[name]),
        f"batch{batch}_questions_per_second": round(
            len(questions) / sum(call_seconds[name]), 3)}
  base = results["saved_model"]
  qps_key = f"batch{batch}_questions_per_second"
  for name in paths:
    results[name]["p50_speedup_vs_saved_model"] = round(
        base["latency_batch1"]["p50_ms"] /
        results[name]["latency_batch1"]["p50_ms"], 3)
    results[name]["p95_speedup_vs_saved_model"] = round(
        base["latency_batch1"]["p95_ms"] /
        results[name]["latency_batch1"]["p95_ms"], 3)
    results[name]["throughput_ratio_vs_saved_model"] = round(
        results[name][qps_key] / base[qps_key], 3)
    results[name]["same_answers_as_saved_model"] = (
        f"{sum(a == b for a, b in zip(batch_texts[name], batch_texts['saved_model']))}"
        f"/{len(questions)}")
  quality = {"onnx_float": portable["probe_float"],
             "parity_max_abs_diff": portable["parity"][
                 "logits_max_abs_diff_vs_saved_model"]}
  for name, report in portable["quantized"].items():
    quality[name] = (report if "skipped" in report else {
        key: report[key] for key in (
            "size_bytes", "float_size_bytes", "size_ratio", "probe_quantized",
            "f1_drop", "answer_agreement", "answers_changed")})
  summary = {
      "model": "tiny random BERT" if tiny else "minilm-l6",
      "train_steps": 2 if tiny else _FLAGS.train_steps.value,
      "heldout_articles": split.heldout_titles,
      "questions": {"throughput": len(questions),
                    "latency": len(latency_set)},
      "seconds": {"train": round(train_seconds, 1),
                  "export": round(export_seconds, 1)},
      "cpu_count": os.cpu_count(),
      "results": results,
      "probe_quality": quality,
      "workdir": workdir,
  }
  print(json.dumps(summary, indent=2, ensure_ascii=False))
  print(bench_common.format_last_line(
      "int8_onnx_speedup",
      base["latency_batch1"]["p50_ms"] /
      results["onnx_int8"]["latency_batch1"]["p50_ms"]))


if __name__ == "__main__":
  app.run(main)
