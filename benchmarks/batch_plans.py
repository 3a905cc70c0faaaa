"""What each bucket width of tfqa's batch plan computes and how it mixes batches, counted from the plans alone (nothing is trained).

  .venv/bin/python benchmarks/batch_plans.py [--bucket_widths=none,64,32,16,8,1]

For the training windows of train_throughput.py (answerable questions of
articles 1-4 of the shared real sample; article 5 held out), tfqa's own
batch plans (data.pipeline.plan_epoch, `--seeds` seeds x `--epochs` epochs)
are counted for each bucket width, each batch padded to its longest window
rounded up to the same width (data.windows.padded_width, the rule training
uses; "none": random batches rounded up to 64, tfqa's padding="dynamic"):

  padding share          padded positions / computed positions;
  tokens vs 64           computed positions relative to width 64 (tfqa's
                         default, padding="width_buckets" with
                         pad_to_multiple_of=64);
  same-paragraph pairs   pairs of windows per batch whose questions share a
                         paragraph (so a batch sees fewer distinct contexts):
                         sorting by exact length (width 1) puts a paragraph's
                         questions together, random batches rarely do.

The counts are exact: the plans are a pure function of seed and epoch. What
a width does to speed and to F1 is measured by train_throughput.py and
quality_parity.py, not here. Prints one JSON summary, then a last line
`padding_share_at_64=<share of tfqa's default>`.
"""

from __future__ import annotations

import dataclasses
import json

from tfqa.cli import common  # Keras 2 setup.

common.hide_pytorch()

from absl import app
from absl import flags
import numpy as np

import bench_common

_DATA = flags.DEFINE_string("data", bench_common.SHARED_SAMPLE,
                            "SQuAD JSON with at least 5 articles.")
_WIDTHS = flags.DEFINE_list(
    "bucket_widths", ["none", "64", "32", "16", "8", "1"],
    "Bucket widths to count; none: random batches (padding='dynamic').")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Windows per batch.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds 0..N-1 of the plans.")
_EPOCHS = flags.DEFINE_integer("epochs", 4, "Epochs of each seed's plan.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Default: a temp dir.")
_TINY = flags.DEFINE_bool("tiny", False,
                          "A smoke run: the tiny split, batches of 4.")

# tfqa's default width, the row the others are compared with.
DEFAULT_WIDTH = 64


@dataclasses.dataclass(frozen=True)
class PlanCounts:
  """What one bucket width's plans compute, summed over seeds and epochs."""

  real_tokens: int
  computed_tokens: int
  same_paragraph_pairs: int
  batches: int

  @property
  def padding_share(self) -> float:
    return 1 - self.real_tokens / self.computed_tokens

  @property
  def pairs_per_batch(self) -> float:
    return self.same_paragraph_pairs / self.batches


def count_plans(lengths: np.ndarray, paragraphs: np.ndarray, *,
                bucket_width: int | None, batch_size: int, seeds: int,
                epochs: int, max_seq_length: int) -> PlanCounts:
  """Counts tfqa's plans over seeds x epochs at one bucket width.

  Args:
    lengths: each window's unpadded length.
    paragraphs: each window's paragraph id (equal ids share a context).
    bucket_width: plan_epoch's bucket_width, also the padding multiple;
      None: random batches padded to a multiple of DEFAULT_WIDTH.
    batch_size, seeds, epochs, max_seq_length: as training uses them.
  """
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa.data import pipeline  # pylint: disable=import-outside-toplevel
  from tfqa.data import windows  # pylint: disable=import-outside-toplevel

  padding = config.PipelineConfig(
      padding="dynamic" if bucket_width is None else "width_buckets",
      pad_to_multiple_of=bucket_width or DEFAULT_WIDTH)
  real = computed = pairs = batches = 0
  for seed in range(seeds):
    for epoch in range(epochs):
      for batch in pipeline.plan_epoch(
          lengths, batch_size=batch_size, seed=seed, epoch=epoch,
          bucket_width=pipeline.bucket_width(padding)):
        width = windows.padded_width(int(lengths[batch].max()), padding,
                                     max_seq_length)
        real += int(lengths[batch].sum())
        computed += len(batch) * int(width)
        _, counts = np.unique(paragraphs[batch], return_counts=True)
        pairs += int((counts * (counts - 1) // 2).sum())
        batches += 1
  return PlanCounts(real, computed, pairs, batches)


def parse_width(text: str) -> int | None:
  if text == "none":
    return None
  if not text.isdigit() or int(text) < 1:
    raise SystemExit(f"batch_plans: Invalid --bucket_widths entry {text!r}: "
                     f"expected a positive integer or none.")
  return int(text)


def training_windows(train_file: str):
  """(lengths, paragraph ids) of the windows tfqa trains on from train_file."""
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa.data import squad  # pylint: disable=import-outside-toplevel
  from tfqa.data import windows  # pylint: disable=import-outside-toplevel
  from tfqa.model import source  # pylint: disable=import-outside-toplevel

  examples = squad.load_squad_json(train_file).examples
  tokenizer = windows.load_tokenizer(
      source.resolve(config.ModelConfig(
          model=config.BUNDLED_MODEL_NAME)).tokenizer_path)
  features = windows.build_features(examples, tokenizer, config.FeatureConfig())
  contexts = {}
  paragraphs = np.array([contexts.setdefault(examples[i].context, len(contexts))
                         for i in features.example_index])
  return features.lengths, paragraphs


def main(argv):
  from tfqa import config  # pylint: disable=import-outside-toplevel

  if len(argv) > 1:
    raise SystemExit(f"batch_plans: Unexpected arguments {argv[1:]}: it "
                     f"takes flags only (--help lists them).")
  widths = [parse_width(text) for text in _WIDTHS.value]
  if DEFAULT_WIDTH not in widths:
    widths.append(DEFAULT_WIDTH)
  for name, holder in (("batch_size", _BATCH), ("seeds", _SEEDS),
                       ("epochs", _EPOCHS)):
    if holder.value < 1:
      raise SystemExit(f"batch_plans: Invalid --{name}={holder.value}: "
                       f"expected >= 1.")
  split = bench_common.split_in_workdir(_DATA.value, _WORKDIR.value,
                                        temp_prefix="tfqa-batch-plans-",
                                        tiny=_TINY.value)
  lengths, paragraphs = training_windows(split.train_file)
  batch = 4 if _TINY.value else _BATCH.value
  counts = {width: count_plans(
      lengths, paragraphs, bucket_width=width, batch_size=batch,
      seeds=_SEEDS.value, epochs=_EPOCHS.value,
      max_seq_length=config.FeatureConfig().max_seq_length)
            for width in widths}
  default = counts[DEFAULT_WIDTH]
  print(f"{len(lengths)} training windows (articles {split.train_titles}), "
        f"batches of {batch}, seeds 0-{_SEEDS.value - 1} x {_EPOCHS.value} "
        f"epochs\n")
  print("| bucket width | padding share | tokens vs 64 | same-paragraph pairs "
        "per batch |\n|---|---|---|---|")
  rows = {}
  for width, count in counts.items():
    name = "none" if width is None else str(width)
    rows[name] = {
        "padding_share": round(count.padding_share, 4),
        "tokens_vs_64": round(count.computed_tokens / default.computed_tokens,
                              4),
        "same_paragraph_pairs_per_batch": round(count.pairs_per_batch, 3),
        "real_tokens": count.real_tokens,
        "computed_tokens": count.computed_tokens, "batches": count.batches}
    print(f"| {name} | {count.padding_share:.1%} | "
          f"{rows[name]['tokens_vs_64']:.3f} | {count.pairs_per_batch:.2f} |")
  print(json.dumps({"windows": len(lengths), "batch_size": batch,
                    "seeds": _SEEDS.value, "epochs": _EPOCHS.value,
                    "widths": rows}, indent=2))
  print(f"padding_share_at_64={default.padding_share:.4f}")


if __name__ == "__main__":
  app.run(main)
