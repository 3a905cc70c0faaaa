"""Training speed of tfqa's fit loop vs the transformers TF QA example recipe, both ways upstream pads, side by side.

  .venv/bin/python benchmarks/train_throughput.py [--steps=0] [--model_kind=bert_base]

Same model (the bundled MiniLM-L6, or --model_kind=bert_base: a random-init
BERT-base shape over the MiniLM vocab), same data (answerable questions of
articles 1-4 of the shared real sample; article 5 held out), same batch size,
same number of steps (default --steps=0: one full epoch, floor(windows /
batch) steps), same optimiser settings (tfqa's defaults: AdamW, peak LR, 10%
linear warm-up then linear decay to 0, weight decay 0.01 off for
LayerNorm/bias, no clipping, epsilon 1e-6), dropout on in all.

Runs, in this order, in one process:
  recipe384  the recipe of transformers' examples/tensorflow/question-answering
             /run_qa.py as hf_recipe.py builds it (shared with
             quality_parity.py), every window padded to 384
             (--pad_to_max_length), with tfqa's optimiser numbers so that
             only speed differs.
  recipe     the same recipe with each shuffled batch padded to its longest
             window (run_qa.py's default).
  tfqa       training.train_and_evaluate with default settings
             (width_buckets padding, float32, no XLA); its train_seconds
             include the checkpoint saved at the last step.
  tfqa_xla, tfqa_bf16   the same with jit_compile=True, with
             mixed_precision="mixed_bfloat16" (--variants=jit_compile,
             mixed_bfloat16; not run by default).
  tfqa_dynamic   padding="dynamic": random batches padded to their longest
             window, rounded up to 64 (--variants=dynamic_padding).
  tfqa_w32, tfqa_w16   tfqa's width_buckets with narrower buckets:
             pad_to_multiple_of=32 or 16 (--variants=width_32,width_16;
             benchmarks/batch_plans.py counts their padding).
  tfqa_bf16_w16   both mixed_bfloat16 and pad_to_multiple_of=16
             (--variants=mixed_bfloat16_width_16).

Two rates per run: end to end (the whole fit, the first step's tracing
included: what a user waits for) and steady state (from the end of step 1
to the end of the last step: tfqa from its TensorBoard log's per-step wall
times, the recipe from a callback at each step end). tfqa's train step is
traced once: every batch has the element spec [None, None] whatever its
padded width, and its optimizer slots are built before fit, so new widths
cost no retracing. Loading and tokenization are reported separately. All
models are scored on the held-out article by tfqa.inference.run_evaluation.evaluate
(same windows, same decoder, official SQuAD v1.1 EM/F1; one run each, so
the F1 differences are noise-level checks, not a quality comparison: that
is quality_parity.py). The weights of all start identical: the recipe
builds the model with tfqa.model.modeling.build_model (transformers 4.57's TF
from_pretrained cannot read the bundled PyTorch safetensors) under the same
seed.

MFU = useful training FLOP/s / measured float32 matmul FLOP/s, where useful
FLOPs = sum over trained windows of 6 * P * n + 12 * L * H * n^2, n = the
window's real (unpadded) tokens, P = non-embedding parameters, L layers, H
hidden size; the matmul peak is the best of chains of 2048^2 tf.linalg.matmul
calls measured before every run and at the end of this run (on a shared
machine a low peak measurement inflates MFU: compare the rates); a
mixed_bfloat16 run's MFU is against the bfloat16 matmul peak, measured the
same way (`mfu_peak_dtype` says which). The
recipe's per-step tokens are expectations over shuffled batches.

Prints one JSON summary, then a last line
`train_speedup_vs_recipe384=<tfqa / recipe384 end-to-end windows/s>` (over
a full epoch by default).
"""

import dataclasses
import json
import math
import os
import time

from tfqa.cli import common  # Keras 2 setup.

common.hide_pytorch()  # It runs no PyTorch model.

from absl import app
from absl import flags
import numpy as np

import bench_common
import hf_recipe

_DATA = flags.DEFINE_string("data", bench_common.SHARED_SAMPLE,
                            "SQuAD JSON with >= 5 articles (default: the "
                            "shared real sample).")
_MODEL = flags.DEFINE_string("model", "minilm-l6",
                             "tfqa --model for --model_kind=pretrained.")
_MODEL_KIND = flags.DEFINE_enum(
    "model_kind", "pretrained", ["pretrained", "bert_base"],
    "pretrained: --model's weights; bert_base: random-init 12x768 BERT.")
_STEPS = flags.DEFINE_integer(
    "steps", 0, "Training steps of every run (0: one full epoch, "
    "floor(training windows / batch size)).")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size of every run.")
_LR = flags.DEFINE_float("learning_rate", 3e-4, "Peak learning rate.")
_SEED = flags.DEFINE_integer("seed", 1, "Seed of every run.")
# --variants: (run name, TrainConfig overrides, PipelineConfig overrides).
_BF16 = {"mixed_precision": "mixed_bfloat16"}
_VARIANT_SETTINGS = {
    "jit_compile": ("tfqa_xla", {"jit_compile": True}, {}),
    "mixed_bfloat16": ("tfqa_bf16", _BF16, {}),
    "dynamic_padding": ("tfqa_dynamic", {}, {"padding": "dynamic"}),
    "width_32": ("tfqa_w32", {}, {"pad_to_multiple_of": 32}),
    "width_16": ("tfqa_w16", {}, {"pad_to_multiple_of": 16}),
    "mixed_bfloat16_width_16": ("tfqa_bf16_w16", _BF16,
                                {"pad_to_multiple_of": 16}),
}
_VARIANT_NAMES = tuple(_VARIANT_SETTINGS)
_VARIANTS = flags.DEFINE_list(
    "variants", [],
    f"tfqa variants run after the default one, some of {_VARIANT_NAMES} "
    f"(--variants= for none).")
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048,
                                    "n of the n x n matmul peak measurement.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Default: a temp dir.")
_TINY = flags.DEFINE_bool("tiny", False,
                          "Smoke mode: tiny random BERT, tiny data, 2 steps.")

@dataclasses.dataclass
class RunStats:
  """Timings and results of one training run (per-step lists, step order)."""

  name: str
  step_windows: list  # windows of each step
  step_real_tokens: list  # real (unpadded) tokens of each step
  step_padded_tokens: list  # tokens the model computed on, padding included
  step_flops: list  # useful training FLOPs of each step (module doc)
  fit_seconds: float  # the whole fit, first step (tracing) included
  after_first_seconds: float  # from the end of step 1 to the end of the fit
  metrics: dict
  other_seconds: dict
  matmul_dtype: str = "float32"  # the precision of its matmuls: MFU's peak

  def summary(self, peaks: dict) -> dict:
    peak_flops = peaks[self.matmul_dtype]
    windows, flops = sum(self.step_windows), sum(self.step_flops)
    achieved = flops / self.fit_seconds
    achieved_after_first = sum(self.step_flops[1:]) / self.after_first_seconds
    real, padded = sum(self.step_real_tokens), sum(self.step_padded_tokens)
    return {
        "steps": len(self.step_windows), "windows": windows,
        "fit_seconds": round(self.fit_seconds, 2),
        "windows_per_second": round(windows / self.fit_seconds, 3),
        "first_step_seconds": round(
            self.fit_seconds - self.after_first_seconds, 2),
        "windows_per_second_after_first_step": round(
            sum(self.step_windows[1:]) / self.after_first_seconds, 3),
        "real_tokens": int(real), "padded_tokens": int(padded),
        "padding_share": round(1 - real / padded, 3),
        "real_tokens_per_second": round(real / self.fit_seconds, 1),
        "achieved_gflops": round(achieved / 1e9, 2),
        "mfu_peak_dtype": self.matmul_dtype,
        "mfu_percent": round(100 * achieved / peak_flops, 2),
        "mfu_after_first_step_percent": round(
            100 * achieved_after_first / peak_flops, 2),
        "heldout_exact_match": round(self.metrics["exact_match"], 2),
        "heldout_f1": round(self.metrics["f1"], 2),
        **{k: round(v, 2) for k, v in self.other_seconds.items()},
    }


def run_recipe(name, run_config, train_file, heldout_examples, *, padding,
               flops_args):
  """The transformers TF example recipe (hf_recipe) with `padding`; returns its RunStats."""
  from tfqa.data import windows as features  # pylint: disable=import-outside-toplevel
  from tfqa.inference import run_evaluation  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel

  train = run_config.train
  steps, batch = train.max_steps, train.train_batch_size
  # Same optimiser settings as tfqa's run (module doc): only speed is compared.
  recipe = hf_recipe.train(run_config, train_file, steps=steps,
                           padding=padding, epsilon=train.adam_epsilon,
                           clip_norm=train.clip_norm)
  source = model_source.resolve(run_config.model)
  started = time.perf_counter()
  result = run_evaluation.evaluate(
      recipe.model, heldout_examples,
      features.load_tokenizer(source.tokenizer_path), run_config=run_config)
  eval_seconds = time.perf_counter() - started
  # Shuffled batches of windows: each step's expected real tokens and
  # FLOPs are the batch size times the mean over all windows.
  real_lengths = recipe.window_lengths
  width = (hf_recipe.MAX_LENGTH if padding == "max_length"
           else expected_longest(real_lengths, batch))
  stats = RunStats(
      name=name, step_windows=[batch] * steps,
      step_real_tokens=[batch * float(real_lengths.mean())] * steps,
      step_padded_tokens=[batch * width] * steps,
      step_flops=[batch * bench_common.training_flops(
          real_lengths, **flops_args) / recipe.num_windows] * steps,
      fit_seconds=recipe.fit_seconds,
      after_first_seconds=(recipe.step_end_times[-1] -
                           recipe.step_end_times[0]),
      metrics=result.metrics,
      other_seconds={"load_seconds": recipe.load_seconds,
                     "tokenize_seconds": recipe.tokenize_seconds,
                     "eval_seconds": eval_seconds})
  return stats, recipe.num_windows


def expected_longest(lengths, batch_size: int, *, draws: int = 2000) -> float:
  """Mean longest window of a random batch (without replacement), by sampling."""
  rng = np.random.default_rng(0)
  return float(np.mean([lengths[rng.choice(len(lengths), batch_size,
                                           replace=False)].max()
                        for _ in range(draws)]))


def tfqa_plan(run_config, examples):
  """(real lengths, padded width) of each batch tfqa trains on, in order.

  Rebuilds tfqa's deterministic batch plan (a pure function of seed and
  step), so the counts are exact. Also returns the number of windows per
  epoch and the tokenization time.
  """
  from tfqa.data import pipeline as input_pipeline  # pylint: disable=import-outside-toplevel
  from tfqa.data import windows as features  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel

  source = model_source.resolve(run_config.model)
  tokenizer = features.load_tokenizer(source.tokenizer_path)
  started = time.perf_counter()
  windows = features.build_features(examples, tokenizer, run_config.features)
  tokenize_seconds = time.perf_counter() - started
  train = run_config.train
  lengths = windows.lengths
  per_epoch = input_pipeline.steps_per_epoch(len(lengths),
                                             train.train_batch_size)
  plan = []
  for epoch in range(math.ceil(train.max_steps / per_epoch)):
    plan.extend(input_pipeline.plan_epoch(
        lengths, batch_size=train.train_batch_size, seed=train.seed,
        epoch=epoch,
        bucket_width=input_pipeline.bucket_width(run_config.pipeline)))
  batches = []
  for batch in plan[:train.max_steps]:
    batch_lengths = lengths[batch]
    width = int(features.padded_width(
        int(batch_lengths.max()), run_config.pipeline,
        run_config.features.max_seq_length))
    batches.append((batch_lengths, width))
  return batches, len(lengths), tokenize_seconds


def run_tfqa(name, run_config, workdir, *, batches, flops_args,
             tokenize_seconds, matmul_dtype):
  """One train_and_evaluate run in a fresh directory; returns its RunStats."""
  from tfqa.training import trainer  # pylint: disable=import-outside-toplevel

  model_dir = os.path.join(workdir, name)
  started = time.perf_counter()
  result = trainer.train_and_evaluate(run_config, model_dir, verbose=0)
  wall = time.perf_counter() - started
  if result.windows_run != sum(len(b) for b, _ in batches):
    raise RuntimeError(f"{name}: trained {result.windows_run} windows, the "
                       f"rebuilt plan has {sum(len(b) for b, _ in batches)}.")
  step_ends = bench_common.step_end_times(model_dir)
  return RunStats(
      name=name, step_windows=[len(b) for b, _ in batches],
      step_real_tokens=[float(b.sum()) for b, _ in batches],
      step_padded_tokens=[len(b) * width for b, width in batches],
      step_flops=[bench_common.training_flops(b, **flops_args)
                  for b, _ in batches],
      # train_seconds includes the checkpoint saved after the last step.
      fit_seconds=result.train_seconds,
      after_first_seconds=step_ends[result.steps_run] - step_ends[1],
      metrics=result.metrics,
      other_seconds={
          "tokenize_seconds": tokenize_seconds,
          # Model loading, tokenization, dataset and eval of the call.
          "load_tokenize_eval_seconds": wall - result.train_seconds},
      matmul_dtype=matmul_dtype)


def _matmul_dtype(run_config) -> str:
  """The precision of a run's matmuls, whose peak is its MFU's denominator."""
  return ("bfloat16" if run_config.train.mixed_precision == "mixed_bfloat16"
          else "float32")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa.data import squad as squad_lib  # pylint: disable=import-outside-toplevel
  from tfqa.model import modeling  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel

  unknown = sorted(set(_VARIANTS.value) - set(_VARIANT_NAMES))
  if unknown:
    raise app.UsageError(f"Invalid value for --variants: {unknown}. Expected "
                         f"some of {_VARIANT_NAMES}.")
  if _STEPS.value < 0:
    raise app.UsageError(f"Invalid --steps={_STEPS.value}: expected >= 0 "
                         f"(0: one full epoch).")
  tiny = _TINY.value
  workdir, train_file, heldout_file, train_titles, heldout_titles = (
      bench_common.split_in_workdir(_DATA.value, _WORKDIR.value,
                                    temp_prefix="tfqa-train-bench-",
                                    tiny=tiny))
  kind = "tiny" if tiny else _MODEL_KIND.value
  batch = 4 if tiny else _BATCH.value
  run_config = config.RunConfig(
      model=bench_common.model_config(kind, workdir, model=_MODEL.value),
      data=config.DataConfig(train_file=train_file, eval_file=heldout_file),
      train=config.TrainConfig(
          train_batch_size=batch, learning_rate=_LR.value,
          num_train_epochs=1_000_000, max_steps=1, seed=_SEED.value))
  train_examples = squad_lib.load_squad_json(train_file).examples
  heldout_examples = squad_lib.load_squad_json(heldout_file).examples
  # One full epoch: floor(windows / batch) steps, which every run trains
  # (the recipe drops the remainder, tfqa would complete it).
  _, tfqa_windows, _ = tfqa_plan(run_config, train_examples)
  steps = 2 if tiny else (_STEPS.value or tfqa_windows // batch)
  run_config = dataclasses.replace(run_config, train=dataclasses.replace(
      run_config.train, max_steps=steps))
  matmul_size = 256 if tiny else _MATMUL_SIZE.value
  started = time.perf_counter()
  # The machine may be shared: the peak is measured before every run and at
  # the end, and the best measurement is the denominator of MFU.
  # A bfloat16 run's MFU is against the bfloat16 peak (a CPU with
  # AVX512-BF16 multiplies bfloat16 about twice as fast).
  variants = [("tfqa", run_config)] + [
      (name, dataclasses.replace(
          run_config,
          train=dataclasses.replace(run_config.train, **train_overrides),
          pipeline=dataclasses.replace(run_config.pipeline,
                                       **pipeline_overrides)))
      for name, train_overrides, pipeline_overrides in (
          _VARIANT_SETTINGS[variant] for variant in _VARIANTS.value)]
  dtypes = sorted({"float32", *(_matmul_dtype(c) for _, c in variants)},
                  reverse=True)  # float32 first
  peaks = {dtype: [] for dtype in dtypes}

  def measure_peaks():
    for dtype in dtypes:
      peaks[dtype].append(bench_common.matmul_flops_per_second(
          matmul_size, dtype=dtype))

  measure_peaks()

  model, _ = modeling.build_model(model_source.resolve(run_config.model))
  flops_args = {"params": bench_common.nonembedding_params(model),
                "layers": model.config.num_hidden_layers,
                "hidden": model.config.hidden_size}
  del model

  runs = []
  recipe_windows = None
  for name, padding in (("recipe384", "max_length"), ("recipe", "longest")):
    stats, recipe_windows = run_recipe(
        name, run_config, train_file, heldout_examples, padding=padding,
        flops_args=flops_args)
    runs.append(stats)
    measure_peaks()
  for name, variant_config in variants:
    batches, tfqa_windows, tokenize_seconds = tfqa_plan(variant_config,
                                                       train_examples)
    measure_peaks()
    runs.append(run_tfqa(
        name, variant_config, workdir, batches=batches,
        flops_args=flops_args, tokenize_seconds=tokenize_seconds,
        matmul_dtype=_matmul_dtype(variant_config)))
  measure_peaks()

  stats = {run.name: run.summary({dtype: max(measured) for dtype, measured
                                  in peaks.items()}) for run in runs}
  summary = {
      "model": _MODEL.value if kind == "pretrained" else kind,
      "model_kind": kind, **flops_args,
      "train_articles": train_titles, "heldout_articles": heldout_titles,
      "batch_size": batch, "steps": steps,
      "full_epoch": steps == tfqa_windows // batch,
      "learning_rate": _LR.value,
      "train_windows_per_epoch": {"recipe": recipe_windows,
                                  "tfqa": tfqa_windows},
      "matmul_gflops_measured": [round(p / 1e9, 1) for p in peaks["float32"]],
      **({"matmul_gflops_measured_bfloat16": [
          round(p / 1e9, 1) for p in peaks["bfloat16"]]}
         if "bfloat16" in peaks else {}),
      "runs": stats,
      **{f"{rate}_speedup_vs_{base}": {
          name: round(s[key] / stats[base][key], 3)
          for name, s in stats.items() if name.startswith("tfqa")}
         for base in ("recipe384", "recipe")
         for rate, key in (("end_to_end", "windows_per_second"),
                           ("steady_state",
                            "windows_per_second_after_first_step"))},
      **{f"f1_delta_vs_{base}": {
          name: round(s["heldout_f1"] - stats[base]["heldout_f1"], 2)
          for name, s in stats.items() if name.startswith("tfqa")}
         for base in ("recipe384", "recipe")},
      "benchmark_seconds": round(time.perf_counter() - started, 1),
      "workdir": workdir,
  }
  print(json.dumps(summary, indent=2))
  print(bench_common.format_last_line(
      "train_speedup_vs_recipe384", stats["tfqa"]["windows_per_second"] /
      stats["recipe384"]["windows_per_second"]))


if __name__ == "__main__":
  app.run(main)
