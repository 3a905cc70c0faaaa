"""GPU check: train the bundled encoder on a GPU in float32, mixed_float16, mixed_bfloat16 and with XLA; windows/s and MFU.

  .venv/bin/python benchmarks/gpu_check.py [--steps=30] [--batch=32]

Not part of `make test` (it needs a GPU). On a machine where TensorFlow sees
no GPU it prints one line saying so and exits 1 before doing anything else.

For each variant (float32; float32 + XLA; mixed_float16; mixed_float16 +
XLA; mixed_bfloat16) it trains the bundled MiniLM-L6 QA model with
training.train_and_evaluate (--require_gpu on, no evaluation) for --steps
steps on the answerable questions of the shared real sample, then checks
that the run ran on the GPU: every model weight lives on a GPU device and
the GPU's peak memory grew during the run. Reported per variant: windows/s
after the first step (which traces the train function; from the run's
per-step TensorBoard times) and MFU = useful training FLOP/s (see
bench_common.training_flops) / the GPU's measured matmul peak in the
variant's compute dtype (float32, float16 or bfloat16; best of chains of
--matmul_size^2 matmuls measured before the runs and at the end).

Prints one JSON summary, then a last line `fp16_xla_speedup=<mixed_float16 +
XLA windows/s / float32 windows/s>`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from tfqa.cli import common  # pylint: disable=unused-import  (Keras 2 setup)

from absl import app
from absl import flags

import bench_common

_DATA = flags.DEFINE_string("data", bench_common.SHARED_SAMPLE,
                            "SQuAD JSON (the shared real sample).")
_STEPS = flags.DEFINE_integer("steps", 30, "Training steps per variant.",
                              lower_bound=3)
_BATCH = flags.DEFINE_integer("batch", 32, "Windows per step.", lower_bound=1)
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 4096,
                                    "Side of the peak-measuring matmuls.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Scratch directory.")

# name -> (TrainConfig overrides, compute dtype of its matmuls).
VARIANTS = {
    "float32": ({"mixed_precision": "float32"}, "float32"),
    "float32_xla": ({"mixed_precision": "float32", "jit_compile": True},
                    "float32"),
    "mixed_float16": ({"mixed_precision": "mixed_float16"}, "float16"),
    "mixed_float16_xla": ({"mixed_precision": "mixed_float16",
                           "jit_compile": True}, "float16"),
    "mixed_bfloat16": ({"mixed_precision": "mixed_bfloat16"}, "bfloat16"),
}


def gpu_or_exit() -> list:
  """This process's GPUs; with none, one line and exit status 1."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  gpus = tf.config.list_physical_devices("GPU")
  if not gpus:
    sys.exit("gpu_check: TensorFlow sees no GPU on this machine "
             "(tf.config.list_physical_devices('GPU') is empty); run it on "
             "a GPU machine with tensorflow[and-cuda] installed (Colab: "
             "Runtime > Change runtime type > a GPU). Nothing was run.")
  return gpus


def _ran_on_gpu(model, peak_before: int) -> dict:
  """Where the run's weights lived and how much GPU memory it used."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  off_gpu = [w.name for w in model.weights if "GPU" not in w.device.upper()]
  peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
  if off_gpu or peak <= peak_before:
    raise RuntimeError(f"The run did not train on the GPU: weights off it: "
                       f"{off_gpu[:3]}, GPU peak memory {peak} bytes "
                       f"(before: {peak_before}).")
  return {"weights_on_gpu": len(model.weights), "gpu_peak_bytes": peak}


def run_variant(name, run_config, workdir, *, flops_args, lengths):
  """Trains one variant; returns its figures (peak not yet applied)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfqa.training import trainer  # pylint: disable=import-outside-toplevel

  overrides, _ = VARIANTS[name]
  run_config = dataclasses.replace(run_config, train=dataclasses.replace(
      run_config.train, **overrides))
  tf.config.experimental.reset_memory_stats("GPU:0")
  peak_before = tf.config.experimental.get_memory_info("GPU:0")["peak"]
  models = []
  model_dir = os.path.join(workdir, name)
  result = trainer.train_and_evaluate(
      run_config, model_dir, verbose=0,
      hooks=trainer.TrainingHooks(training_done=models.append))
  placement = _ran_on_gpu(models[0], peak_before)
  ends = bench_common.step_end_times(model_dir)
  seconds = ends[result.steps_run] - ends[1]
  steps = result.steps_run - 1
  windows = steps * run_config.train.train_batch_size
  # The same windows each step on average: the mean window length.
  flops = steps * bench_common.training_flops(
      lengths, **flops_args) / len(lengths) * (
          run_config.train.train_batch_size)
  return {"windows_per_second": windows / seconds,
          "flops_per_second": flops / seconds, **placement}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  gpus = gpu_or_exit()
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa.data import squad as squad_lib  # pylint: disable=import-outside-toplevel
  from tfqa.data import windows as windows_lib  # pylint: disable=import-outside-toplevel
  from tfqa.model import modeling  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel

  workdir, train_file, _, _, _ = bench_common.split_in_workdir(
      _DATA.value, _WORKDIR.value, temp_prefix="tfqa-gpu-check-", tiny=False)
  run_config = config.RunConfig(
      model=bench_common.model_config("pretrained", workdir),
      data=config.DataConfig(train_file=train_file),
      train=config.TrainConfig(
          train_batch_size=_BATCH.value, learning_rate=3e-5,
          num_train_epochs=1_000_000, max_steps=_STEPS.value, seed=0,
          require_gpu=True))
  source = model_source.resolve(run_config.model)
  model, _ = modeling.build_model(source)
  flops_args = {"params": bench_common.nonembedding_params(model),
                "layers": model.config.num_hidden_layers,
                "hidden": model.config.hidden_size}
  del model
  tokenizer = windows_lib.load_tokenizer(source.tokenizer_path,
                                          do_lower_case=True)
  windows = windows_lib.build_features(
      squad_lib.load_squad_json(train_file).examples, tokenizer,
      run_config.features)
  lengths = [len(ids) for ids in windows.input_ids]  # unpadded
  dtypes = sorted({dtype for _, dtype in VARIANTS.values()})
  peaks = {d: [bench_common.matmul_flops_per_second(
      _MATMUL_SIZE.value, dtype=d)] for d in dtypes}
  figures = {name: run_variant(name, run_config, workdir,
                               flops_args=flops_args, lengths=lengths)
             for name in VARIANTS}
  for d in dtypes:
    peaks[d].append(bench_common.matmul_flops_per_second(_MATMUL_SIZE.value,
                                                         dtype=d))
  for name, (_, dtype) in VARIANTS.items():
    figures[name]["mfu"] = figures[name]["flops_per_second"] / max(
        peaks[dtype])
  details = tf.config.experimental.get_device_details(gpus[0])
  print(json.dumps({
      "gpu": details.get("device_name", gpus[0].name),
      "compute_capability": details.get("compute_capability"),
      "steps": _STEPS.value, "batch": _BATCH.value,
      "matmul_peak_flops_per_second": {d: max(p) for d, p in peaks.items()},
      "variants": figures}, indent=2))
  print(bench_common.format_last_line(
      "fp16_xla_speedup", figures["mixed_float16_xla"]["windows_per_second"] /
      figures["float32"]["windows_per_second"]))


if __name__ == "__main__":
  app.run(main)
