"""Helpers the speed benchmarks share: the real-data split, model shapes, matmul peak, FLOP counts, timing in turns.

Not a library module: the benchmark scripts import it from their own
directory (Python puts a script's directory first on sys.path).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from typing import NamedTuple

from absl import app
from absl import flags
import numpy as np

# The shared real sample: SQuAD v2.0 dev, first five articles.
SHARED_SAMPLE = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
    "squad_v2_dev_sample.json"))

# Encoder shapes of the randomly initialised models (the vocab is always the
# bundled MiniLM's uncased 30522-word-piece vocab, which is BERT's).
BERT_BASE_SHAPE = {"hidden_size": 768, "num_hidden_layers": 12,
                   "num_attention_heads": 12, "intermediate_size": 3072}
TINY_SHAPE = {"hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 64}
MODEL_KINDS = ("pretrained", "bert_base", "tiny")

# Names of the embedding tables (lookups, not matmuls: no FLOPs counted).
_EMBEDDING_TABLES = ("word_embeddings", "position_embeddings",
                     "token_type_embeddings")


def require_data(path: str) -> None:
  """Exits with a message naming the file when the data file is absent."""
  if not os.path.exists(path):
    raise SystemExit(f"{path} is absent (the shared real-data sample lives in "
                     f"the workplace's shared/ folder; pass --data=PATH).")


def split_answerable(path: str, out_dir: str, *, tiny: bool,
                     heldout_article: int = 4
                     ) -> tuple[str, str, list[str], list[str]]:
  """Writes the answerable questions of four articles (train) and a fifth (held out).

  Args:
    path: a SQuAD JSON file with at least five articles.
    out_dir: where train.json and heldout.json go.
    tiny: keep 5 paragraphs of the first training article and 3 of the
      held-out one.
    heldout_article: index (0-4) of the held-out article among the first
      five; the other four are trained on (a cross-validation fold).

  Returns:
    (train_file, heldout_file, train_titles, heldout_titles).
  """
  with open(path, encoding="utf-8") as f:
    squad = json.load(f)
  if len(squad["data"]) < 5:
    raise SystemExit(f"{path} has {len(squad['data'])} articles; expected at "
                     f"least 5 (4 to train on, the 5th held out).")
  if not 0 <= heldout_article < 5:
    raise SystemExit(f"Held-out article {heldout_article} is not one of the "
                     f"first five (0-4).")
  for article in squad["data"]:
    for paragraph in article["paragraphs"]:
      paragraph["qas"] = [qa for qa in paragraph["qas"]
                          if not qa.get("is_impossible")]
  articles = squad["data"][:5]
  train = dict(squad, data=[a for i, a in enumerate(articles)
                            if i != heldout_article])
  heldout = dict(squad, data=[articles[heldout_article]])
  if tiny:
    train["data"] = [dict(train["data"][0],
                          paragraphs=train["data"][0]["paragraphs"][:5])]
    heldout["data"] = [dict(heldout["data"][0],
                            paragraphs=heldout["data"][0]["paragraphs"][:3])]
  os.makedirs(out_dir, exist_ok=True)
  files = []
  for name, obj in (("train.json", train), ("heldout.json", heldout)):
    files.append(os.path.join(out_dir, name))
    with open(files[-1], "w", encoding="utf-8") as f:
      json.dump(obj, f)
  return (files[0], files[1], [a["title"] for a in train["data"]],
          [a["title"] for a in heldout["data"]])


def carve_dev(train_file: str, out_dir: str, *, share: float,
              seed: list[int]) -> tuple[str, str, int]:
  """Splits a training file's paragraphs into fit.json and dev.json.

  `share` of the paragraphs of all its articles (at least one, at least one
  left), drawn by `seed`, go to dev.json with all their questions, so no
  context is both trained on and selected on. Returns (fit_file, dev_file,
  number of dev paragraphs).
  """
  with open(train_file, encoding="utf-8") as f:
    squad = json.load(f)
  where = [(a, p) for a, article in enumerate(squad["data"])
           for p in range(len(article["paragraphs"]))]
  count = min(max(1, round(share * len(where))), len(where) - 1)
  chosen = {where[i] for i in
            np.random.default_rng(seed).choice(len(where), count,
                                               replace=False)}
  parts = {"fit.json": [], "dev.json": []}
  for a, article in enumerate(squad["data"]):
    for name, keep in (("fit.json", False), ("dev.json", True)):
      paragraphs = [paragraph for p, paragraph in
                    enumerate(article["paragraphs"])
                    if ((a, p) in chosen) == keep]
      if paragraphs:
        parts[name].append(dict(article, paragraphs=paragraphs))
  files = []
  for name, data in parts.items():
    files.append(os.path.join(out_dir, name))
    with open(files[-1], "w", encoding="utf-8") as f:
      json.dump(dict(squad, data=data), f)
  return files[0], files[1], count


class Split(NamedTuple):
  """A benchmark's working directory and the real-data split written there."""

  workdir: str
  train_file: str
  heldout_file: str
  train_titles: list[str]
  heldout_titles: list[str]


def split_in_workdir(data: str, workdir: str | None, *, temp_prefix: str,
                     tiny: bool, heldout_article: int = 4) -> Split:
  """Checks `data` and writes its split (split_answerable) into the working directory.

  Args:
    data: the --data file (SystemExit naming it when absent).
    workdir: the --workdir; None: a new temp dir named `temp_prefix`...
    temp_prefix: the benchmark's temp dir prefix, e.g. "tfqa-serve-bench-".
    tiny: split_answerable's tiny.
    heldout_article: split_answerable's heldout_article.
  """
  require_data(data)
  workdir = workdir or tempfile.mkdtemp(prefix=temp_prefix)
  return Split(workdir, *split_answerable(data, workdir, tiny=tiny,
                                          heldout_article=heldout_article))


@dataclasses.dataclass(frozen=True)
class ServingFlags:
  """The flags of the serving benchmarks (absl FlagHolders)."""

  data: flags.FlagHolder
  train_steps: flags.FlagHolder
  latency_questions: flags.FlagHolder
  batch_size: flags.FlagHolder
  workdir: flags.FlagHolder
  tiny: flags.FlagHolder

  def prepare(self, argv: list[str], *, temp_prefix: str) -> Split:
    """Refuses stray arguments, then splits --data into --workdir (split_in_workdir)."""
    if len(argv) > 1:
      raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    return split_in_workdir(self.data.value, self.workdir.value,
                            temp_prefix=temp_prefix, tiny=self.tiny.value)


def define_serving_flags(*, train_steps: int, latency_questions: int,
                         timed_on: str) -> ServingFlags:
  """Defines --data, --train_steps, --latency_questions, --batch_size, --workdir and --tiny.

  `timed_on` names what answers in the latency run ("path", "side").
  """
  return ServingFlags(
      data=flags.DEFINE_string("data", SHARED_SAMPLE,
                               "SQuAD JSON with >= 5 articles (default: the "
                               "shared real sample)."),
      train_steps=flags.DEFINE_integer("train_steps", train_steps,
                                       "Training steps before the export."),
      latency_questions=flags.DEFINE_integer(
          "latency_questions", latency_questions,
          f"Questions timed one by one on each {timed_on}."),
      batch_size=flags.DEFINE_integer(
          "batch_size", 32, "Questions per call in the throughput run."),
      workdir=flags.DEFINE_string("workdir", None, "Default: a temp dir."),
      tiny=flags.DEFINE_bool("tiny", False,
                             "Smoke mode: tiny random BERT, 2 steps, few "
                             "questions."))


def take_turns(functions: dict, calls: list[tuple]) -> tuple[dict, dict]:
  """Seconds and result of every call on every function, the functions taking turns.

  Call i goes to the functions in their order rotated by i (with two: every
  other call reverses the order), so a change in a shared machine's load
  hits all alike.

  Args:
    functions: name -> fn(*args).
    calls: the arguments of each call.

  Returns:
    (seconds, results): name -> one entry per call.
  """
  seconds = {name: [] for name in functions}
  results = {name: [] for name in functions}
  names = list(functions)
  for i, args in enumerate(calls):
    for name in names[i % len(names):] + names[:i % len(names)]:
      started = time.perf_counter()
      results[name].append(functions[name](*args))
      seconds[name].append(time.perf_counter() - started)
  return seconds, results


def take_turns_batched(functions: dict, calls: list[list[tuple[str, str]]]
                       ) -> tuple[dict, dict]:
  """take_turns over calls of several questions; every function's answers in one list.

  Args:
    functions: name -> fn(questions, contexts) -> answer texts.
    calls: lists of (question, context).
  """
  seconds, answers = take_turns(
      functions, [([q for q, _ in call], [c for _, c in call])
                  for call in calls])
  return seconds, {name: [text for call in per_call for text in call]
                   for name, per_call in answers.items()}


def percentiles(seconds, *, mean: bool = False) -> dict:
  """p50 and p95 (and the mean) of `seconds`, in ms, and their count."""
  ms = 1000 * np.asarray(seconds)
  result = {"p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2)}
  if mean:
    result["mean_ms"] = round(float(ms.mean()), 2)
  return {**result, "n": len(ms)}


def model_config(kind: str, workdir: str, *, model: str | None = None):
  """A tfqa ModelConfig: pretrained weights, or a random-init BERT shape.

  Args:
    kind: "pretrained" (`model`'s weights), "bert_base" or "tiny" (random
      init over the bundled MiniLM's vocab).
    workdir: where the BERT config JSON of a random-init model is written.
    model: for kind "pretrained": tfqa's --model (default: the bundled
      MiniLM-L6).
  """
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel

  if kind == "pretrained":
    return config.ModelConfig(model=model or config.BUNDLED_MODEL_NAME)
  if kind not in MODEL_KINDS:
    raise ValueError(f"Invalid model kind {kind!r}; expected one of "
                     f"{MODEL_KINDS}.")
  vocab_dir = model_source.bundled_model_dir()
  shape = BERT_BASE_SHAPE if kind == "bert_base" else TINY_SHAPE
  bert_config = {"vocab_size": _vocab_size(vocab_dir), **shape,
                 "max_position_embeddings": 512, "type_vocab_size": 2,
                 "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                 "attention_probs_dropout_prob": 0.1,
                 "initializer_range": 0.02, "layer_norm_eps": 1e-12,
                 "model_type": "bert"}
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, f"bert_config_{kind}.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(bert_config, f, indent=2)
  return config.ModelConfig(bert_config_file=path, vocab_file=vocab_dir)


def train_briefly(workdir: str, train_file: str, *, tiny: bool, steps: int,
                  decode=None) -> str:
  """Fine-tunes for `steps` steps (batch 16, lr 3e-4; tiny: batch 4); returns the run dir.

  For benchmarks that need trained weights to export, not a good model.

  Args:
    workdir: the run goes to workdir/run.
    train_file: SQuAD JSON to train on.
    tiny: the tiny random BERT (else the bundled MiniLM), batch 4.
    steps: training steps.
    decode: the run's tfqa.config.DecodeConfig (default: tfqa's defaults).
  """
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa.training import trainer  # pylint: disable=import-outside-toplevel

  run_config = config.RunConfig(
      model=model_config("tiny" if tiny else "pretrained", workdir),
      data=config.DataConfig(train_file=train_file),
      decode=decode or config.DecodeConfig(),
      train=config.TrainConfig(train_batch_size=4 if tiny else 16,
                               learning_rate=3e-4, num_train_epochs=1_000_000,
                               max_steps=steps, seed=1))
  model_dir = os.path.join(workdir, "run")
  trainer.train_and_evaluate(run_config, model_dir, verbose=0)
  return model_dir


def _vocab_size(vocab_dir):
  with open(os.path.join(vocab_dir, "vocab.txt"), encoding="utf-8") as f:
    return sum(1 for _ in f)


def matmul_flops_per_second(n: int, *, iterations: int = 4,
                            repeats: int = 3, dtype: str = "float32") -> float:
  """Best measured FLOP/s of a chain of n x n tf.linalg.matmul calls in `dtype`.

  The chain (x <- x @ b) cannot be folded away; b is scaled so values stay
  O(1) (no overflow or denormals, which would change the speed).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  a = tf.cast(tf.random.stateless_normal((n, n), seed=(1, 2)), dtype)
  b = tf.cast(tf.random.stateless_normal((n, n), seed=(3, 4)) / np.sqrt(n),
              dtype)

  @tf.function
  def chain(x):
    for _ in tf.range(iterations):
      x = tf.linalg.matmul(x, b)
    return tf.reduce_sum(x)

  chain(a).numpy()  # trace and warm up
  best = float("inf")
  for _ in range(repeats):
    started = time.perf_counter()
    chain(a).numpy()
    best = min(best, time.perf_counter() - started)
  return 2.0 * n ** 3 * iterations / best


def nonembedding_params(model) -> int:
  """Trainable parameters outside the embedding tables."""
  return int(sum(np.prod(w.shape) for w in model.trainable_weights
                 if not any(t in w.name for t in _EMBEDDING_TABLES)))


def training_flops(lengths, *, params: int, layers: int, hidden: int) -> float:
  """Forward + backward FLOPs of training on windows of the given lengths.

  Per window of n tokens: 6 * params * n (every non-embedding weight does a
  multiply-add per token forward, twice that backward) + 12 * layers *
  hidden * n^2 (the QK^T and attention x V matmuls: 4 * hidden * n^2 forward
  per layer, three times that with backward).
  """
  lengths = np.asarray(lengths, dtype=np.float64)
  return float(np.sum(6.0 * params * lengths +
                      12.0 * layers * hidden * lengths ** 2))


def format_last_line(name: str, value: float) -> str:
  """The benchmark's last line, `name=value` (what the smoke test parses)."""
  return f"{name}={value:.4f}"


def step_end_times(model_dir: str) -> dict[int, float]:
  """Wall time at the end of each global step of a tfqa run.

  Read from the run's TensorBoard log (logs/train), where tfqa writes one
  "loss" scalar per step as the step ends.
  """
  import glob  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfqa.layout import rundir  # pylint: disable=import-outside-toplevel

  times = {}
  pattern = os.path.join(model_dir, rundir.LOGS_SUBDIR, "train",
                         "events.out.tfevents.*")
  for path in sorted(glob.glob(pattern)):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      if any(value.tag == "loss" for value in event.summary.value):
        times[int(event.step)] = event.wall_time
  return times
