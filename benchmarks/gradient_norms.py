"""Gradient norms of real batches: the dense global norm tfqa clips on, and the raw-row norm Keras' legacy optimizer (the recipe) clips on.

  .venv/bin/python benchmarks/gradient_norms.py [--batches=8] [--tiny]

Builds the bundled MiniLM QA model (fresh span head, dropout on, as in
training), takes the first --batches training batches that tfqa would train
on (fold 0's training articles of the shared sample, tfqa's default windows
and bucketed batches, seed 0), and for each batch computes the gradients of
the model's own loss once, then:
  dense     tf.linalg.global_norm of the gradients with embedding
            IndexedSlices made dense (duplicate rows summed): what
            tfqa.training.optimization.AdamW reports as gradient_norm and clips on;
  raw_rows  tf.linalg.global_norm of the same gradients as they arrive, one
            row per token occurrence: what Keras' legacy Adam (used by
            transformers.create_optimizer) clips on;
  embeddings / encoder+head   the dense norm split into the embedding tables
            and everything else.
Also checks, on the first batch, that one tfqa optimizer step records the
same dense norm (dropout off for that check, so both see one loss).
Last line: `dense_over_raw_median=<median ratio>`.
"""

from __future__ import annotations

import statistics

from tfqa.cli import common  # Keras 2 setup.

common.hide_pytorch()  # It runs no PyTorch model.

from absl import app
from absl import flags

import bench_common

_DATA = flags.DEFINE_string("data", bench_common.SHARED_SAMPLE,
                            "SQuAD JSON with >= 5 articles.")
_BATCHES = flags.DEFINE_integer("batches", 8, "Batches to measure.")
_TINY = flags.DEFINE_bool("tiny", False, "Smoke mode: tiny random BERT.")


def _norms(model, inputs, labels):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  with tf.GradientTape() as tape:
    outputs = model({**inputs, **labels}, training=True)
    loss = tf.reduce_mean(outputs.loss)
  grads = tape.gradient(loss, model.trainable_weights)
  dense = [tf.convert_to_tensor(g) for g in grads]
  is_embedding = ["embeddings" in w.name for w in model.trainable_weights]
  return {
      "loss": float(loss),
      "dense": float(tf.linalg.global_norm(dense)),
      "raw_rows": float(tf.linalg.global_norm(grads)),
      "embeddings": float(tf.linalg.global_norm(
          [g for g, e in zip(dense, is_embedding) if e])),
      "encoder_head": float(tf.linalg.global_norm(
          [g for g, e in zip(dense, is_embedding) if not e])),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import tf_keras  # pylint: disable=import-outside-toplevel
  from tfqa import config  # pylint: disable=import-outside-toplevel
  from tfqa.data import pipeline  # pylint: disable=import-outside-toplevel
  from tfqa.data import squad as squad_lib  # pylint: disable=import-outside-toplevel
  from tfqa.data import windows as features  # pylint: disable=import-outside-toplevel
  from tfqa.model import modeling  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel
  from tfqa.training import optimization  # pylint: disable=import-outside-toplevel

  workdir, train_file, _, _, _ = bench_common.split_in_workdir(
      _DATA.value, None, temp_prefix="tfqa-gradnorm-", tiny=_TINY.value,
      heldout_article=0)
  model_config = bench_common.model_config(
      "tiny" if _TINY.value else "pretrained", workdir)
  source = model_source.resolve(model_config)
  tokenizer = features.load_tokenizer(source.tokenizer_path)
  windows = features.build_features(
      squad_lib.load_squad_json(train_file).examples, tokenizer,
      config.FeatureConfig())
  batch_size = 4 if _TINY.value else 16
  dataset = pipeline.train_dataset(
      windows, batch_size=batch_size, seed=0, num_epochs=1,
      max_seq_length=config.FeatureConfig().max_seq_length)
  tf_keras.utils.set_random_seed(0)
  model, _ = modeling.build_model(source)
  rows = []
  for inputs, labels in dataset.take(_BATCHES.value):
    rows.append(_norms(model, inputs, labels))
  print(f"{'batch':>5} {'loss':>7} {'dense':>8} {'raw_rows':>9} "
        f"{'dense/raw':>9} {'embeddings':>10} {'encoder+head':>12}")
  for i, r in enumerate(rows):
    print(f"{i:>5} {r['loss']:7.3f} {r['dense']:8.3f} {r['raw_rows']:9.3f} "
          f"{r['dense'] / r['raw_rows']:9.3f} {r['embeddings']:10.3f} "
          f"{r['encoder_head']:12.3f}")

  # The optimizer's own record equals the independent dense norm.
  tf_keras.utils.set_random_seed(0)
  quiet, _ = modeling.build_model(source, dropout=False)
  inputs, labels = next(iter(dataset))
  expected = _norms(quiet, inputs, labels)["dense"]
  optimizer = optimization.create_optimizer(
      learning_rate=1e-5, total_steps=10, warmup_ratio=0.0,
      weight_decay=0.01, clip_norm=1.0)
  quiet.compile(optimizer=optimizer)
  quiet.train_on_batch(inputs, labels)
  recorded = optimization.last_gradient_norm(optimizer)
  print(f"optimizer's gradient_norm {recorded:.5f} vs independent "
        f"{expected:.5f} (relative difference "
        f"{abs(recorded - expected) / expected:.2e})")
  print(bench_common.format_last_line(
      "dense_over_raw_median",
      statistics.median(r["dense"] / r["raw_rows"] for r in rows)))


if __name__ == "__main__":
  app.run(main)
