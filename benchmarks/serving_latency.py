"""Serving latency and throughput of tfqa's exported serving_default signature vs transformers.pipeline, same weights.

  .venv/bin/python benchmarks/serving_latency.py [--train_steps=12]

Trains the bundled MiniLM-L6 briefly on articles 1-4 of the shared real
sample (the weights need not be good, only identical on both sides), exports
it with export.export_model(verify=False) and its defaults (windows run in
length-sorted chunks of ExportConfig.max_windows_per_batch), then answers
the same questions with
  tfqa       predictor.SavedModelPredictor over the SavedModel's
             serving_default signature (tokenization, windows, model and span
             decoding all in the graph), decoding with
             span_scoring="pipeline" (the pipeline's scoring rules);
  pipeline   transformers.pipeline("question-answering", model=pretrained/,
             tokenizer=pretrained/, framework="tf", dtype=None) over the
             export's `pretrained/` copy of the same weights, called with
             max_answer_len set to the run's max_answer_length (30; the
             pipeline's default is 15) and its other defaults (max_seq_len
             384, doc_stride 128, align_to_words).
Questions: the answerable questions of article 5 of the shared sample (short
contexts, one window) and of the embedded sample's long paragraphs (626-693
word pieces, several windows).

Both are warmed up before timing, and take turns question by question (and
call by call), so a change in the load of a shared machine hits both alike.
Latency: one question per call, p50/p95 over --latency_questions questions
(a quarter of them long). Throughput: every question, in calls of 32
questions, short and long contexts in separate calls (the TF pipeline takes
a list but runs it one question at a time: transformers batches only for
PyTorch). Agreement: identical answer text on every question (1) against
the throughput run's pipeline answers (its defaults) and (2) against the
pipeline asked with the same rules as tfqa: align_to_words=False (it
otherwise widens spans to whole words) and the window overlap that puts its
windows where tfqa's are (its doc_stride is the overlap of windows, tfqa's
the step between their starts; see `same_rules_overlap`).

Prints one JSON summary, then a last line `p50_latency_speedup=<pipeline p50
/ tfqa p50>`.
"""

import json
import os
import time

from tfqa.cli import common  # pylint: disable=unused-import  (Keras 2 setup)

from absl import app
from absl import flags

import bench_common

_FLAGS = bench_common.define_serving_flags(
    train_steps=12, latency_questions=64, timed_on="side")
# In this script's --help: its key flags.
flags.adopt_module_key_flags(bench_common)

# The embedded sample's four long paragraphs have 3,100+ characters (626-693
# word pieces); its others fewer than 1,000.
_LONG_CONTEXT_CHARS = 2500


def load_questions(heldout_file, long_file):
  """(short, long): lists of (id, question, context), answerable only.

  Short: every question of `heldout_file`. Long: the questions of
  `long_file` whose context has more than _LONG_CONTEXT_CHARS characters.
  """
  from tfqa.data import squad as squad_lib  # pylint: disable=import-outside-toplevel

  short = [(e.id, e.question, e.context)
           for e in squad_lib.load_squad_json(heldout_file).examples]
  long = [(e.id, e.question, e.context)
          for e in squad_lib.answerable_only(
              squad_lib.load_squad_json(long_file)).examples
          if len(e.context) > _LONG_CONTEXT_CHARS]
  return short, long


def interleave(short, long, count):
  """`count` questions, long ones spread evenly among short ones."""
  n_long = min(len(long), count // 4)
  n_short = min(len(short), count - n_long)
  chosen, every = [], max(1, (n_short + n_long) // max(n_long, 1))
  short_iter, long_iter = iter(short[:n_short]), iter(long[:n_long])
  for i in range(n_short + n_long):
    pick = long_iter if (i % every == every - 1) else short_iter
    item = next(pick, None) or next(short_iter, None) or next(long_iter)
    chosen.append(item)
  return chosen


def time_latency(sides, questions):
  """Per-question seconds and answers of one-question calls, per side.

  The sides take turns on every question (and swap who goes first), so a
  change in the machine's load hits both alike.
  """
  return bench_common.take_turns(sides, [(q, c) for _, q, c in questions])


def time_throughput(sides, chunks):
  """Seconds and answers per chunk of questions (one call per chunk)."""
  return bench_common.take_turns_batched(
      sides, [[(q, c) for _, q, c in chunk] for chunk in chunks])


def chunked(questions, size):
  return [questions[lo:lo + size] for lo in range(0, len(questions), size)]


def train_and_export(workdir, train_file, probe_file, *, tiny, steps):
  """Trains briefly and exports; returns (ExportResult, RunConfig).

  The run decodes with span_scoring="pipeline", the pipeline's rules.
  """
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa import export  # pylint: disable=import-outside-toplevel
  from tfqa.layout import rundir  # pylint: disable=import-outside-toplevel

  model_dir = bench_common.train_briefly(
      workdir, train_file, tiny=tiny, steps=steps,
      decode=config.DecodeConfig(span_scoring="pipeline"))
  return export.export_model(model_dir=model_dir,
                             export_dir=os.path.join(workdir, "export"),
                             verify=False, probe_file=probe_file), (
                                 rundir.read_run_config(model_dir))


def same_rules_overlap(pipe, question, run_config):
  """The pipeline doc_stride (window overlap) that places windows as tfqa.

  tfqa starts a window every features.doc_stride context tokens; the
  pipeline's windows hold max_seq_length - question pieces - 3 context
  tokens and overlap by its doc_stride.
  """
  features = run_config.features
  question_pieces = min(
      len(pipe.tokenizer(question, add_special_tokens=False)["input_ids"]),
      features.max_query_length)
  window_context = features.max_seq_length - question_pieces - 3
  return max(0, window_context - features.doc_stride)


def agreement_counts(questions, tfqa_answers, other_answers, long_ids):
  """Identical answer texts, overall and by context length, with the misses."""
  counts = {}
  for part in ("all", "short", "long"):
    pairs = [(q, a, b) for q, a, b in zip(questions, tfqa_answers,
                                          other_answers)
             if part == "all" or (q[0] in long_ids) == (part == "long")]
    same = sum(a == b for _, a, b in pairs)
    counts[part] = f"{same}/{len(pairs)}"
    counts[f"{part}_percent"] = round(100 * same / max(len(pairs), 1), 2)
  counts["disagreements"] = [
      {"id": q[0], "long": q[0] in long_ids, "tfqa": a, "pipeline": b}
      for q, a, b in zip(questions, tfqa_answers, other_answers) if a != b
  ][:20]
  return counts


def main(argv):
  split = _FLAGS.prepare(argv, temp_prefix="tfqa-serve-bench-")
  from tfqa.data import sample  # pylint: disable=import-outside-toplevel
  from tfqa.inference import predictor  # pylint: disable=import-outside-toplevel

  tiny, batch = _FLAGS.tiny.value, _FLAGS.batch_size.value
  started = time.perf_counter()
  exported, run_config = train_and_export(
      split.workdir, split.train_file, split.heldout_file, tiny=tiny,
      steps=2 if tiny else _FLAGS.train_steps.value)
  prepare_seconds = time.perf_counter() - started

  short, long = load_questions(split.heldout_file, sample.sample_path())
  if tiny:
    short, long = short[:6], long[:2]
  latency_set = interleave(short, long,
                           8 if tiny else _FLAGS.latency_questions.value)

  started = time.perf_counter()
  tfqa_predictor = predictor.SavedModelPredictor(exported.saved_model_dir)
  tfqa_load_seconds = time.perf_counter() - started
  started = time.perf_counter()
  import transformers  # pylint: disable=import-outside-toplevel
  pipe = transformers.pipeline(
      "question-answering", model=exported.pretrained_dir,
      tokenizer=exported.pretrained_dir, framework="tf", dtype=None,
      # 4.57's TF loader would pick the PyTorch model.safetensors and fail.
      model_kwargs={"use_safetensors": False})
  pipeline_load_seconds = time.perf_counter() - started
  max_answer_len = run_config.decode.max_answer_length

  def tfqa_one(question, context):
    return tfqa_predictor.answer([question], [context])[0].text

  def tfqa_many(questions, contexts):
    return [a.text for a in tfqa_predictor.answer(questions, contexts)]

  def pipeline_one(question, context):
    return pipe(question=question, context=context,
                max_answer_len=max_answer_len)["answer"]

  def pipeline_many(questions, contexts):
    out = pipe(question=questions, context=contexts,
               max_answer_len=max_answer_len)
    out = out if isinstance(out, list) else [out]
    return [o["answer"] for o in out]

  one = {"tfqa": tfqa_one, "pipeline": pipeline_one}
  many = {"tfqa": tfqa_many, "pipeline": pipeline_many}
  # Warm-up: every distinct path (short, long, batched) on both sides.
  warm = short[:2] + long[:1]
  time_latency(one, warm)
  time_throughput(many, [warm])

  long_ids = {q[0] for q in long}
  is_long = [q[0] in long_ids for q in latency_set]
  latency_seconds, _ = time_latency(one, latency_set)
  # Calls of batch_size questions, short and long contexts in separate calls
  # (tfqa pads every window of a call to the longest one).
  short_chunks = chunked(short, batch)
  chunks = short_chunks + chunked(long, batch)
  chunk_seconds, batch_answers = time_throughput(many, chunks)
  every_question = [q for chunk in chunks for q in chunk]

  def rate(name, part):
    ids = range(len(short_chunks)) if part == "short" else range(
        len(short_chunks), len(chunks)) if part == "long" else range(
            len(chunks))
    return round(sum(len(chunks[i]) for i in ids) /
                 sum(chunk_seconds[name][i] for i in ids), 3)

  results = {}
  for name in one:
    seconds = latency_seconds[name]
    results[name] = {
        "latency_all": bench_common.percentiles(seconds, mean=True),
        "latency_short": bench_common.percentiles(
            [t for t, lg in zip(seconds, is_long) if not lg], mean=True),
        "latency_long": bench_common.percentiles(
            [t for t, lg in zip(seconds, is_long) if lg], mean=True),
        f"batch{batch}_questions_per_second": {
            part: rate(name, part) for part in ("all", "short", "long")},
    }

  tfqa_answers = batch_answers["tfqa"]
  same_rules_answers = [
      pipe(question=q, context=c, max_answer_len=max_answer_len,
           align_to_words=False,
           doc_stride=same_rules_overlap(pipe, q, run_config))["answer"]
      for _, q, c in every_question]
  agreement = {
      "pipeline_defaults": agreement_counts(
          every_question, tfqa_answers, batch_answers["pipeline"], long_ids),
      "same_rules": agreement_counts(every_question, tfqa_answers,
                                     same_rules_answers, long_ids)}
  tfqa_p50 = results["tfqa"]["latency_all"]["p50_ms"]
  pipeline_p50 = results["pipeline"]["latency_all"]["p50_ms"]
  qps_key = f"batch{batch}_questions_per_second"
  summary = {
      "model": "tiny random BERT" if tiny else "minilm-l6",
      "heldout_articles": split.heldout_titles,
      "questions": {"short": len(short), "long": len(long),
                    "latency_set": len(latency_set)},
      "train_and_export_seconds": round(prepare_seconds, 1),
      "load_seconds": {"tfqa": round(tfqa_load_seconds, 2),
                       "pipeline": round(pipeline_load_seconds, 2)},
      "results": results,
      "p50_ratio_pipeline_over_tfqa": {
          part: round(results["pipeline"][f"latency_{part}"]["p50_ms"] /
                      results["tfqa"][f"latency_{part}"]["p50_ms"], 3)
          for part in ("all", "short", "long")},
      "p95_ratio_pipeline_over_tfqa": {
          part: round(results["pipeline"][f"latency_{part}"]["p95_ms"] /
                      results["tfqa"][f"latency_{part}"]["p95_ms"], 3)
          for part in ("all", "short", "long")},
      "throughput_ratio_tfqa_over_pipeline": {
          part: round(results["tfqa"][qps_key][part] /
                      results["pipeline"][qps_key][part], 3)
          for part in ("all", "short", "long")},
      "identical_answers": agreement,
      "workdir": split.workdir,
  }
  print(json.dumps(summary, indent=2, ensure_ascii=False))
  print(bench_common.format_last_line("p50_latency_speedup",
                                      pipeline_p50 / tfqa_p50))


if __name__ == "__main__":
  app.run(main)
