"""The transformers TF question-answering example recipe, built once for every benchmark that compares with it.

Not a library module: the benchmark scripts import it from their own
directory. It follows transformers' examples/tensorflow/question-answering/
run_qa.py: the HF fast tokenizer with truncation="only_second",
max_length=384, stride=128 (the overlap between windows),
return_overflowing_tokens=True; labels as the example's
prepare_train_features; the windows shuffled over the whole set each epoch
and batched with drop_remainder=True; transformers.create_optimizer
(AdamWeightDecay on Keras' legacy Adam, linear warmup then linear decay,
global clipnorm = TrainingArguments' max_grad_norm); model.compile with the
model's own loss; model.fit.

Two paddings: "max_length" pads every window to 384 (what run_qa.py does with
--pad_to_max_length, and on TPU); "longest" pads each shuffled batch to its
longest window (run_qa.py's default "variable_batch" mode); "longest" costs
less CPU. They are not the same computation: the attention mask keeps padded
positions out of the real tokens' representations, but the model's own QA
loss (transformers' TFQuestionAnsweringLoss, which the recipe compiles with)
is a softmax cross-entropy over every position of the padded window, padded
ones included, so the padded width changes the loss and its gradients (and
dropout draws a mask of the padded shape). That is upstream's behaviour and
this baseline keeps it; tfqa trains with the same model loss, so its padded
widths enter its loss in the same way.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

MAX_LENGTH = 384
STRIDE = 128
# TrainingArguments' defaults, which run_qa.py passes to create_optimizer.
ADAM_EPSILON = 1e-8
MAX_GRAD_NORM = 1.0
PADDINGS = ("max_length", "longest")


def train_features(train_file, tokenizer, *, padding="max_length"):
  """The example's prepare_train_features over a SQuAD JSON file.

  Args:
    train_file: SQuAD JSON (answerable questions are labelled with their
      first answer, as the example does).
    tokenizer: a transformers fast tokenizer.
    padding: "max_length" (arrays [windows, 384]) or "longest" (lists of
      unpadded windows; batches are padded later).

  Returns:
    (inputs, labels): dicts of input columns / int arrays [windows].
  """
  if padding not in PADDINGS:
    raise ValueError(f"Invalid padding {padding!r}; expected one of "
                     f"{PADDINGS}.")
  with open(train_file, encoding="utf-8") as f:
    squad = json.load(f)
  questions, contexts, answers = [], [], []
  for article in squad["data"]:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        # run_qa.py strips leading whitespace from questions.
        questions.append(qa["question"].lstrip())
        contexts.append(paragraph["context"])
        answers.append({"text": [a["text"] for a in qa["answers"]],
                        "answer_start": [a["answer_start"]
                                         for a in qa["answers"]]})
  tokenized = tokenizer(
      questions, contexts, truncation="only_second", max_length=MAX_LENGTH,
      stride=STRIDE, return_overflowing_tokens=True,
      return_offsets_mapping=True,
      padding="max_length" if padding == "max_length" else False)
  sample_mapping = tokenized.pop("overflow_to_sample_mapping")
  offset_mapping = tokenized.pop("offset_mapping")
  starts, ends = [], []
  for i, offsets in enumerate(offset_mapping):
    input_ids = tokenized["input_ids"][i]
    cls_index = input_ids.index(tokenizer.cls_token_id)
    sequence_ids = tokenized.sequence_ids(i)
    answer = answers[sample_mapping[i]]
    if not answer["answer_start"]:
      starts.append(cls_index)
      ends.append(cls_index)
      continue
    start_char = answer["answer_start"][0]
    end_char = start_char + len(answer["text"][0])
    token_start = 0
    while sequence_ids[token_start] != 1:
      token_start += 1
    token_end = len(input_ids) - 1
    while sequence_ids[token_end] != 1:
      token_end -= 1
    if not (offsets[token_start][0] <= start_char and
            offsets[token_end][1] >= end_char):
      starts.append(cls_index)
      ends.append(cls_index)
    else:
      while (token_start < len(offsets) and
             offsets[token_start][0] <= start_char):
        token_start += 1
      starts.append(token_start - 1)
      while offsets[token_end][1] >= end_char:
        token_end -= 1
      ends.append(token_end + 1)
  names = ("input_ids", "attention_mask", "token_type_ids")
  if padding == "max_length":
    inputs = {name: np.array(tokenized[name]) for name in names}
  else:
    inputs = {name: list(tokenized[name]) for name in names}
  labels = {"start_positions": np.array(starts),
            "end_positions": np.array(ends)}
  return inputs, labels


def window_lengths(inputs) -> np.ndarray:
  """Real (unpadded) tokens of each window."""
  return np.array([int(np.sum(mask)) for mask in inputs["attention_mask"]])


def train_dataset(inputs, labels, *, batch_size: int, seed: int):
  """Shuffled (whole set, each epoch) batches, the remainder dropped.

  Lists of unpadded windows (padding="longest") are padded per batch to the
  batch's longest window.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  num_windows = len(labels["start_positions"])
  if isinstance(inputs["input_ids"], np.ndarray):
    return (tf.data.Dataset.from_tensor_slices((inputs, labels))
            .shuffle(num_windows, seed=seed)
            .batch(batch_size, drop_remainder=True)
            .repeat())
  ragged = {name: tf.ragged.constant(column, dtype=tf.int32)
            for name, column in inputs.items()}
  return (tf.data.Dataset.from_tensor_slices((ragged, labels))
          .shuffle(num_windows, seed=seed)
          .batch(batch_size, drop_remainder=True)
          .map(lambda x, y: ({k: v.to_tensor() for k, v in x.items()}, y))
          .repeat())


@dataclasses.dataclass
class RecipeRun:
  """A trained recipe model and what its training took."""

  model: object
  num_windows: int  # training windows per epoch (before the dropped rest)
  steps: int
  window_lengths: np.ndarray  # real tokens of each training window
  fit_seconds: float  # model.fit, first step (tracing) included
  step_end_times: list  # perf_counter at the end of every step
  load_seconds: float
  tokenize_seconds: float
  last_epoch_loss: float  # mean training loss of the last fit epoch


def train(run_config, train_file, *, steps: int | None = None,
          epochs: int | None = None, padding: str = "max_length",
          epsilon: float = ADAM_EPSILON,
          clip_norm: float = MAX_GRAD_NORM) -> RecipeRun:
  """Builds the model and trains it with the recipe.

  The model is built by tfqa.model.modeling.build_model (transformers 4.57's TF
  from_pretrained cannot read the bundled PyTorch safetensors) after seeding
  with the run's seed; batch size, peak LR, warmup ratio and weight decay
  come from `run_config.train`.

  Args:
    run_config: a tfqa RunConfig (model, batch, LR, warmup, decay, seed).
    train_file: SQuAD JSON to train on.
    steps: train exactly this many steps (one fit epoch), or
    epochs: train this many epochs of floor(windows / batch) steps.
    padding: "max_length" or "longest" (module doc).
    epsilon: Adam's epsilon (run_qa.py: 1e-8).
    clip_norm: global clipnorm (run_qa.py: max_grad_norm, 1.0).
  """
  import tf_keras  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  from tfqa.model import modeling  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel

  if (steps is None) == (epochs is None):
    raise ValueError("Pass exactly one of steps and epochs.")
  train_config = run_config.train
  batch = train_config.train_batch_size
  tf_keras.utils.set_random_seed(train_config.seed)
  started = time.perf_counter()
  source = model_source.resolve(run_config.model)
  model, report = modeling.build_model(source)
  # As tfqa's training does: say what was loaded, warn about surprises.
  modeling.log_weights_report(report)
  load_seconds = time.perf_counter() - started

  started = time.perf_counter()
  tokenizer = transformers.AutoTokenizer.from_pretrained(
      source.tokenizer_path, use_fast=True)
  inputs, labels = train_features(train_file, tokenizer, padding=padding)
  tokenize_seconds = time.perf_counter() - started
  num_windows = len(labels["start_positions"])
  per_epoch = num_windows // batch
  fit_epochs, steps_per_epoch = (1, steps) if steps else (epochs, per_epoch)
  total = fit_epochs * steps_per_epoch
  dataset = train_dataset(inputs, labels, batch_size=batch,
                          seed=train_config.seed)
  optimizer, _ = transformers.create_optimizer(
      init_lr=train_config.learning_rate, num_train_steps=total,
      num_warmup_steps=int(total * train_config.warmup_ratio),
      adam_epsilon=epsilon, weight_decay_rate=train_config.weight_decay,
      adam_global_clipnorm=clip_norm if clip_norm > 0 else None)
  model.compile(optimizer=optimizer, jit_compile=False)

  step_ends = []
  record = tf_keras.callbacks.LambdaCallback(
      on_train_batch_end=lambda batch, logs: step_ends.append(
          time.perf_counter()))
  started = time.perf_counter()
  history = model.fit(dataset, epochs=fit_epochs, steps_per_epoch=steps_per_epoch,
            verbose=0, callbacks=[record])
  fit_seconds = time.perf_counter() - started
  return RecipeRun(model=model, num_windows=num_windows, steps=total,
                   window_lengths=window_lengths(inputs),
                   fit_seconds=fit_seconds, step_end_times=step_ends,
                   load_seconds=load_seconds,
                   tokenize_seconds=tokenize_seconds,
                   last_epoch_loss=float(history.history["loss"][-1]))
