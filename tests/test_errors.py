"""Tests for tfqa.errors: one error, worded for the Python API or for a tool's flags."""

import pytest

from tfqa import errors

_FLAGS = {"doc_stride": "--doc_stride", "max_seq_length": "--max_seq_length",
          "model": "--model", "bert_config_file": "--bert_config_file",
          "vocab_file": "--vocab_file"}


def test_an_argument_error_names_the_argument_for_the_api():
  error = errors.ArgumentError("doc_stride", 100, "Expected <= 17.",
                               others=[("max_seq_length", 32)])
  assert isinstance(error, ValueError)
  assert str(error) == ("Invalid value for argument `doc_stride`. Received: "
                        "doc_stride=100 with max_seq_length=32. Expected "
                        "<= 17.")
  with pytest.raises(ValueError, match=r"^Invalid value for argument "
                                       r"`doc_stride`\. Received: "
                                       r"doc_stride=100 "):
    raise error


def test_an_argument_error_names_the_flag_for_a_tool():
  error = errors.ArgumentError("doc_stride", 100, "Expected <= 17.",
                               others=[("max_seq_length", 32)])
  assert error.worded(_FLAGS) == (
      "Invalid value for flag --doc_stride. Received: --doc_stride=100 with "
      "--max_seq_length=32. Expected <= 17.")


def test_an_argument_not_in_the_table_keeps_the_api_words():
  error = errors.ArgumentError("padding", "x", "Expected one of ('a',).",
                               note=" on 2 replicas")
  assert error.worded(_FLAGS) == str(error) == (
      "Invalid value for argument `padding`. Received: padding='x' on 2 "
      "replicas. Expected one of ('a',).")


def test_a_table_may_name_a_positional_argument():
  error = errors.ArgumentError("data_file", "a.json", "Expected SQuAD.")
  assert error.worded({"data_file": "DATA_FILE"}) == (
      "Invalid value for flag DATA_FILE. Received: DATA_FILE='a.json'. "
      "Expected SQuAD.")


def test_exclusive_arguments_are_named_for_the_api_and_for_a_tool():
  error = errors.exclusive(
      {"model": "m", "bert_config_file": "b.json"}, "Pass one.")
  assert str(error) == ("Expected exactly one of `model` and "
                        "`bert_config_file`. Received: model='m', "
                        "bert_config_file='b.json'. Pass one.")
  assert error.worded(_FLAGS) == (
      "Expected exactly one of --model and --bert_config_file. Received: "
      "--model='m', --bert_config_file='b.json'. Pass one.")


def test_a_missing_argument_is_named_for_the_api_and_for_a_tool():
  error = errors.needs("bert_config_file", "b.json", "vocab_file", "Pass it.")
  assert str(error) == "`bert_config_file`='b.json' needs `vocab_file`. Pass it."
  assert error.worded(_FLAGS) == (
      "--bert_config_file='b.json' needs --vocab_file. Pass it.")


def test_advice_may_name_arguments():
  error = errors.ArgumentError(
      "doc_stride", 100, "Expected less. Pass e.g. {doc_stride}=64, or a "
      "larger {max_seq_length:q}.", refers_to=["max_seq_length"])
  assert str(error).endswith("Pass e.g. doc_stride=64, or a larger "
                             "`max_seq_length`.")
  assert error.worded(_FLAGS).endswith("Pass e.g. --doc_stride=64, or a "
                                       "larger --max_seq_length.")


def test_braces_in_values_and_plain_advice_are_kept():
  error = errors.ArgumentError("doc_stride", {"a": 1}, "Expected {not a name}.",
                               note=" of {x}")
  assert str(error) == ("Invalid value for argument `doc_stride`. Received: "
                        "doc_stride={'a': 1} of {x}. Expected {not a name}.")


def test_a_template_names_arguments_by_their_fields():
  error = errors.ArgumentNamingError("Pass {doc_stride}=1 ({doc_stride:q}).",
                                     ["doc_stride"])
  assert str(error) == "Pass doc_stride=1 (`doc_stride`)."
  assert error.worded(_FLAGS) == "Pass --doc_stride=1 (--doc_stride)."


def test_a_boolean_argument_is_worded_as_its_value_or_its_flag():
  error = errors.ArgumentNamingError(
      "Pass {require_gpu:false}, or {answerable_only:true}.",
      ["require_gpu", "answerable_only"])
  assert str(error) == "Pass require_gpu=False, or answerable_only=True."
  assert error.worded({"require_gpu": "--require_gpu",
                       "answerable_only": "--answerable_only"}) == (
      "Pass --norequire_gpu, or --answerable_only.")


def test_advice_of_exclusive_and_needs_may_name_arguments():
  error = errors.exclusive({"a": None, "b": None}, "Pass {a} or {c}.",
                           refers_to=["c"])
  assert error.worded({"a": "--a", "b": "--b", "c": "--c"}) == (
      "Expected exactly one of --a and --b. Received: --a=None, --b=None. "
      "Pass --a or --c.")
  error = errors.needs("a", "x", "b", "Pass {b} {{literally}}.",
                       refers_to=["b"])
  assert str(error) == "`a`='x' needs `b`. Pass b {literally}."
