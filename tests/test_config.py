"""Tests for tfqa.config: validation of every section and strict run_config.json parsing."""

import dataclasses
import json
import re

import pytest

from tfqa import config
from tfqa import errors

MODEL = config.ModelConfig(model="minilm-l6")
DATA = config.DataConfig(train_file="train.json")


def _run_config(**sections):
  return config.RunConfig(**{"model": MODEL, "data": DATA, **sections})


# FeatureConfig


def test_feature_config_defaults_are_valid():
  assert config.FeatureConfig() == config.FeatureConfig(
      max_seq_length=384, doc_stride=128, max_query_length=64)


@pytest.mark.parametrize("name", ["max_seq_length", "doc_stride",
                                  "max_query_length"])
@pytest.mark.parametrize("value, shown", [(0, "0"), (-4, "-4"),
                                          (True, "True"), (8.0, "8.0"),
                                          ("16", "'16'")])
def test_feature_config_requires_positive_ints(name, value, shown):
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `{name}`\. Received: {name}={shown}\. "
      rf"Expected a positive integer\.")):
    config.FeatureConfig(**{name: value})


@pytest.mark.parametrize("max_query_length", [61, 62])
def test_feature_config_query_must_leave_room_for_context(max_query_length):
  with pytest.raises(ValueError, match=(
      rf"Received: max_query_length={max_query_length} with "
      r"max_seq_length=64\. Expected max_query_length \+ 3 < max_seq_length"
      r".*Lower max_query_length or raise max_seq_length\.")):
    config.FeatureConfig(max_seq_length=64, doc_stride=1,
                         max_query_length=max_query_length)


def test_feature_config_smallest_context_is_one_token():
  features = config.FeatureConfig(max_seq_length=64, doc_stride=1,
                                  max_query_length=60)
  assert features.max_seq_length - features.max_query_length - 3 == 1


def test_feature_config_doc_stride_may_not_leave_gaps():
  # 64 - 16 - 3 = 45 context tokens per window.
  assert config.FeatureConfig(max_seq_length=64, doc_stride=45,
                              max_query_length=16).doc_stride == 45
  with pytest.raises(ValueError, match=(
      r"Invalid value for argument `doc_stride`\. Received: doc_stride=46\. "
      r"Expected doc_stride <= max_seq_length - max_query_length - 3 = 45, "
      r".*Lower doc_stride\.")):
    config.FeatureConfig(max_seq_length=64, doc_stride=46, max_query_length=16)


def test_feature_config_is_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError,
                     match="cannot assign to field 'doc_stride'"):
    config.FeatureConfig().doc_stride = 1  # type: ignore[misc]


# PipelineConfig


@pytest.mark.parametrize("padding", config.PADDING_MODES)
def test_pipeline_config_accepts_every_padding_mode(padding):
  assert config.PipelineConfig(padding=padding).padding == padding


@pytest.mark.parametrize("padding", ["static", "Bucketed", ""])
def test_pipeline_config_rejects_unknown_padding(padding):
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `padding`\. Received: "
      rf"padding='{padding}'\. Expected one of \('width_buckets', 'bucketed', "
      rf"'dynamic', "
      rf"'max_length'\)\.")):
    config.PipelineConfig(padding=padding)


@pytest.mark.parametrize("value, shown", [(0, "0"), (-64, "-64"),
                                          (True, "True"), (8.5, "8.5"),
                                          ("8", "'8'")])
def test_pipeline_config_requires_positive_int_multiple(value, shown):
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `pad_to_multiple_of`\. Received: "
      rf"pad_to_multiple_of={shown}\. Expected a positive integer\.")):
    config.PipelineConfig(pad_to_multiple_of=value)


# DecodeConfig


# What a positive-integer field refuses, with how the message shows it.
_NOT_POSITIVE_INTS = pytest.mark.parametrize("value, shown", [
    (0, "0"), (-1, "-1"), (-2, "-2"), (False, "False"), (True, "True"),
    (2.5, "2.5"), (1.0, "1.0")])


def _assert_refuses_non_positive_int(config_class, name, value, shown):
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `{name}`\. Received: {name}={shown}\. "
      rf"Expected a positive integer\.")):
    config_class(**{name: value})


@pytest.mark.parametrize("name", ["n_best_size", "max_answer_length"])
@_NOT_POSITIVE_INTS
def test_decode_config_requires_positive_ints(name, value, shown):
  _assert_refuses_non_positive_int(config.DecodeConfig, name, value, shown)


@pytest.mark.parametrize("value", ["pipeline", "logits"])
def test_decode_config_accepts_span_scorings(value):
  assert config.DecodeConfig(
      span_scoring=value).span_scoring == value


def test_decode_config_rejects_unknown_span_scoring():
  with pytest.raises(ValueError, match=(
      r"Invalid value for argument `span_scoring`\. Received: "
      r"span_scoring='probability'\. Expected one of "
      r"\('logits', 'pipeline'\)\.")):
    config.DecodeConfig(span_scoring="probability")


def test_decode_config_threshold_may_be_negative():
  assert config.DecodeConfig(
      null_score_diff_threshold=-2.5).null_score_diff_threshold == -2.5


# ModelConfig


@pytest.mark.parametrize("kwargs, shown", [
    ({}, "model=None, bert_config_file=None"),
    ({"model": "m", "bert_config_file": "b.json", "vocab_file": "v.txt"},
     "model='m', bert_config_file='b.json'"),
])
def test_model_config_needs_exactly_one_source(kwargs, shown):
  with pytest.raises(ValueError, match=(
      rf"Expected exactly one of `model` and `bert_config_file`\. Received: "
      rf"{shown}\. Pass model for pretrained weights, or bert_config_file "
      rf"with vocab_file")):
    config.ModelConfig(**kwargs)


def test_model_config_bert_config_needs_vocab():
  with pytest.raises(ValueError, match=(
      r"`bert_config_file`='b\.json' needs `vocab_file`\. Pass vocab_file")):
    config.ModelConfig(bert_config_file="b.json")
  assert config.ModelConfig(bert_config_file="b.json",
                            vocab_file="v.txt").vocab_file == "v.txt"


# TrainConfig


@pytest.mark.parametrize("name", ["train_batch_size", "eval_batch_size",
                                  "num_train_epochs", "save_every_steps",
                                  "keep_checkpoints",
                                  "gradient_accumulation_steps"])
@_NOT_POSITIVE_INTS
def test_train_config_requires_positive_ints(name, value, shown):
  _assert_refuses_non_positive_int(config.TrainConfig, name, value, shown)


@pytest.mark.parametrize("name, value, allowed", [
    ("distribution_strategy", "horovod",
     r"\('default', 'one_device', 'mirrored', 'multi_worker_mirrored', "
     r"'tpu'\)"),
    ("mixed_precision", "float16",
     r"\('float32', 'mixed_bfloat16', 'mixed_float16', 'auto'\)"),
    ("keep_best", "loss", r"\('none', 'f1', 'exact'\)"),
])
def test_train_config_rejects_unknown_choices(name, value, allowed):
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `{name}`\. Received: {name}='{value}'\. "
      rf"Expected one of {allowed}\.")):
    config.TrainConfig(**{name: value})


def test_train_config_max_steps_zero_means_no_limit():
  assert config.TrainConfig(max_steps=0).max_steps == 0
  with pytest.raises(ValueError, match=(
      r"Invalid value for argument `max_steps`\. Received: max_steps=-1\. "
      r"Expected >= 0 \(0: no limit\)\.")):
    config.TrainConfig(max_steps=-1)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_train_config_warmup_ratio_in_unit_interval(value):
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `warmup_ratio`\. Received: "
      rf"warmup_ratio={value}\. Expected a value in \[0, 1\)\.")):
    config.TrainConfig(warmup_ratio=value)


def test_train_config_warmup_ratio_bounds():
  assert config.TrainConfig(warmup_ratio=0.0).warmup_ratio == 0.0
  assert config.TrainConfig(warmup_ratio=0.99).warmup_ratio == 0.99


@pytest.mark.parametrize("name", ["learning_rate", "weight_decay",
                                  "clip_norm"])
def test_train_config_rates_non_negative(name):
  assert getattr(config.TrainConfig(**{name: 0.0}), name) == 0.0
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `{name}`\. Received: {name}=-0\.5\. "
      rf"Expected >= 0\.")):
    config.TrainConfig(**{name: -0.5})


def test_train_config_accumulation_must_divide_the_batch():
  assert config.TrainConfig(train_batch_size=32,
                            gradient_accumulation_steps=8
                            ).gradient_accumulation_steps == 8
  with pytest.raises(ValueError, match=(
      r"Invalid value for argument `gradient_accumulation_steps`\. Received: "
      r"gradient_accumulation_steps=5 with train_batch_size=32\. Expected a "
      r"divisor of train_batch_size \(the windows of one optimizer step, cut "
      r"into that many micro-batches\): one of \[1, 2, 4, 8, 16, 32\]\.$")):
    config.TrainConfig(train_batch_size=32, gradient_accumulation_steps=5)


@pytest.mark.parametrize("value, shown", [(-1, "-1"), (True, "True"),
                                          (2.0, "2.0")])
def test_train_config_eval_every_steps_is_a_count(value, shown):
  assert config.TrainConfig(eval_every_steps=0).eval_every_steps == 0
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `eval_every_steps`\. Received: "
      rf"eval_every_steps={shown}\. Expected an integer >= 0 \(0: evaluate "
      rf"only at the end\)\.")):
    config.TrainConfig(eval_every_steps=value)


@pytest.mark.parametrize("train, shown, unused", [
    (config.TrainConfig(eval_every_steps=100), "eval_every_steps=100", "0"),
    (config.TrainConfig(keep_best="exact"), "keep_best='exact'", "none")])
def test_run_config_evaluating_during_training_needs_eval_data(train, shown,
                                                               unused):
  name = shown.split("=")[0]
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `{name}`\. Received: {shown} with no "
      rf"eval data\. Expected eval_file \(or tfds_dataset, whose "
      rf"validation split is evaluated\) to evaluate on; pass "
      rf"eval_file=dev\.json, or {name}={unused}\.$")):
    _run_config(train=train)
  for data in (config.DataConfig(train_file="t.json", eval_file="d.json"),
               config.DataConfig(tfds_dataset="squad/v2.0")):
    assert _run_config(data=data, train=train).train == train


# RunConfig serialization


def _full_run_config():
  return config.RunConfig(
      model=config.ModelConfig(bert_config_file="bert.json",
                               vocab_file="vocab.txt", do_lower_case=True,
                               init_checkpoint="runs/a"),
      data=config.DataConfig(tfds_dataset="squad/v2.0", answerable_only=True),
      features=config.FeatureConfig(max_seq_length=128, doc_stride=32,
                                    max_query_length=16),
      pipeline=config.PipelineConfig(padding="dynamic", pad_to_multiple_of=8),
      decode=config.DecodeConfig(n_best_size=5, max_answer_length=10,
                                 null_score_diff_threshold=-1.5,
                                 version_2_with_negative=True),
      train=config.TrainConfig(learning_rate=3e-4, seed=7,
                               mixed_precision="mixed_bfloat16",
                               deterministic=True, eval_every_steps=500,
                               keep_best="f1",
                               gradient_accumulation_steps=4))


def test_to_dict_has_every_section_and_field():
  obj = _full_run_config().to_dict()
  assert list(obj) == ["model", "data", "features", "pipeline", "decode",
                       "train"]
  assert obj["model"] == {"model": None, "bert_config_file": "bert.json",
                          "vocab_file": "vocab.txt", "do_lower_case": True,
                          "init_checkpoint": "runs/a"}
  assert obj["features"] == {"max_seq_length": 128, "doc_stride": 32,
                             "max_query_length": 16}
  assert obj["train"]["learning_rate"] == 3e-4


def test_round_trip_through_json():
  run_config = _full_run_config()
  text = json.dumps(run_config.to_dict())
  assert config.RunConfig.from_dict(json.loads(text)) == run_config


def test_from_dict_ignores_versions_and_fills_default_sections():
  obj = {"model": {"model": "minilm-l6"}, "data": {"train_file": "train.json"},
         "versions": {"tfqa": "0.0.1", "tensorflow": "1.0"}}
  assert config.RunConfig.from_dict(obj) == _run_config()


def test_from_dict_accepts_int_for_float_and_none_for_optional():
  obj = {"model": {"model": "m", "vocab_file": None, "do_lower_case": None},
         "data": {}, "train": {"learning_rate": 1, "clip_norm": 0}}
  run_config = config.RunConfig.from_dict(obj)
  assert run_config.train.learning_rate == 1
  assert run_config.model.vocab_file is None


@pytest.mark.parametrize("obj, kind", [([], "list"), ("x", "str"),
                                       (None, "NoneType")])
def test_from_dict_needs_an_object(obj, kind):
  with pytest.raises(ValueError, match=(
      rf"^cfg\.json: expected a JSON object, got {kind}\.$")):
    config.RunConfig.from_dict(obj, source="cfg.json")


def test_from_dict_refuses_unknown_sections():
  obj = {"model": {"model": "m"}, "data": {}, "optimizer": {}, "eval": {}}
  with pytest.raises(ValueError, match=(
      r"^cfg\.json: unknown section\(s\) \['eval', 'optimizer'\]; expected "
      r"\['data', 'decode', 'features', 'model', 'pipeline', 'train'\]\.$")):
    config.RunConfig.from_dict(obj, source="cfg.json")


@pytest.mark.parametrize("missing", ["model", "data"])
def test_from_dict_requires_model_and_data(missing):
  obj = {"model": {"model": "m"}, "data": {}}
  del obj[missing]
  with pytest.raises(ValueError, match=(
      rf"^run config: missing section '{missing}'\.$")):
    config.RunConfig.from_dict(obj)


def test_from_dict_section_must_be_an_object():
  obj = {"model": {"model": "m"}, "data": {}, "train": [1, 2]}
  with pytest.raises(ValueError, match=(
      r"^cfg\.json: train: expected a JSON object, got \[1, 2\]\.$")):
    config.RunConfig.from_dict(obj, source="cfg.json")


def test_from_dict_refuses_unknown_fields():
  obj = {"model": {"model": "m"}, "data": {},
         "features": {"max_seq_len": 128, "stride": 32}}
  with pytest.raises(ValueError, match=(
      r"^cfg\.json: features: unknown field\(s\) \['max_seq_len', 'stride'\];"
      r" expected some of \['doc_stride', 'max_query_length', "
      r"'max_seq_length'\]\.$")):
    config.RunConfig.from_dict(obj, source="cfg.json")


@pytest.mark.parametrize("section, name, value, expected, shown", [
    ("train", "seed", "42", "int", "'42'"),           # int given as str
    ("train", "seed", True, "int", "True"),           # bool is not an int
    ("train", "seed", 42.0, "int", "42.0"),           # float for int
    ("features", "doc_stride", None, "int", "None"),
    ("train", "learning_rate", "1e-4", "float", "'1e-4'"),
    ("train", "learning_rate", False, "float", "False"),
    ("train", "deterministic", 1, "bool", "1"),
    ("train", "tpu", 0, "str", "0"),
    ("model", "vocab_file", 3, "str | None", "3"),
    ("model", "do_lower_case", "yes", "bool | None", "'yes'"),
    ("data", "answerable_only", None, "bool", "None"),
])
def test_from_dict_refuses_wrong_types(section, name, value, expected, shown):
  obj = {"model": {"model": "m"}, "data": {}}
  obj.setdefault(section, {})[name] = value
  with pytest.raises(ValueError, match=(
      rf"^cfg\.json: {section}\.{name}: expected {re.escape(expected)}, "
      rf"got {re.escape(shown)}\.$")):
    config.RunConfig.from_dict(obj, source="cfg.json")


def test_from_dict_cuts_long_values_in_messages():
  obj = {"model": {"model": "m"}, "data": {}, "train": {"tpu": ["x"] * 100}}
  with pytest.raises(ValueError) as info:
    config.RunConfig.from_dict(obj, source="cfg.json")
  assert str(info.value) == (
      f"cfg.json: train.tpu: expected str, got {repr(['x'] * 100)[:80]}.")


def test_from_dict_reports_invalid_values_with_section():
  obj = {"model": {"model": "m"}, "data": {}, "train": {"max_steps": -3}}
  with pytest.raises(ValueError, match=(
      r"^cfg\.json: train: Invalid value for argument `max_steps`\. "
      r"Received: max_steps=-3\.")):
    config.RunConfig.from_dict(obj, source="cfg.json")


def test_from_dict_reports_invalid_model_section():
  with pytest.raises(ValueError, match=(
      r"^run config: model: Expected exactly one of `model` and "
      r"`bert_config_file`\. Received: model=None, bert_config_file=None\.")):
    config.RunConfig.from_dict({"model": {}, "data": {}})
  # Still naming its arguments: a tool words them as its flags.
  with pytest.raises(errors.ArgumentNamingError) as raised:
    config.RunConfig.from_dict({"model": {}, "data": {}})
  assert raised.value.worded({"model": "--model"}).startswith(
      "run config: model: Expected exactly one of --model and "
      "`bert_config_file`.")


# changed_fields


def test_changed_fields_of_equal_configs_is_empty():
  assert _full_run_config().changed_fields(_full_run_config()) == []


def test_changed_fields_names_each_difference_in_order():
  base = _run_config()
  other = _run_config(
      features=config.FeatureConfig(max_seq_length=256),
      decode=config.DecodeConfig(version_2_with_negative=True),
      train=config.TrainConfig(seed=1, learning_rate=1e-4))
  assert base.changed_fields(other) == [
      "features.max_seq_length", "decode.version_2_with_negative",
      "train.learning_rate", "train.seed"]
  assert other.changed_fields(base) == base.changed_fields(other)


def test_changed_fields_ignores_int_float_spelling():
  assert _run_config(train=config.TrainConfig(clip_norm=1)).changed_fields(
      _run_config(train=config.TrainConfig(clip_norm=1.0))) == []


@pytest.mark.parametrize("kwargs,match", [
    ({"quantize": "int4"},
     r"Received: quantize='int4'\. Expected one of \('int8',\)"),
    ({"onnx": "yes"}, r"Received: onnx='yes'\. Expected a bool"),
    ({"allow_quality_drop": 1},
     r"Received: allow_quality_drop=1\. Expected a bool"),
    ({"max_f1_drop": -0.5},
     r"Received: max_f1_drop=-0\.5\. Expected F1 points in \[0, 100\]"),
    ({"max_f1_drop": True}, r"Received: max_f1_drop=True"),
    ({"opset": 13}, r"Received: opset=13\. Expected an int >= 17"),
])
def test_portable_config_refuses_invalid_values(kwargs, match):
  with pytest.raises(ValueError, match=match):
    config.PortableConfig(**kwargs)


def test_portable_config_enabled():
  assert not config.PortableConfig().enabled
  assert config.PortableConfig(onnx=True).enabled
  assert config.PortableConfig(quantize="int8").enabled
