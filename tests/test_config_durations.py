"""Tests for tfqa.config.durations and TrainConfig.time_budget's check."""

import pytest

from tfqa import config
from tfqa import errors
from tfqa.config import durations


@pytest.mark.parametrize("text, expected", [
    ("45m", 2700.0), ("1h30m", 5400.0), ("2.5h", 9000.0), ("900s", 900.0),
    ("1h0m30s", 3630.0), (" 90s ", 90.0), ("0.5m", 30.0)])
def test_seconds_of_each_form(text, expected):
  assert durations.seconds(text) == expected


@pytest.mark.parametrize("text", [
    "", "90", "m", "30m1h", "1h1h", "0m", "0h0m", "1 h", "-5m", "5x", "1h 30m",
    "1.h", None, 90])
def test_seconds_refuses_what_is_not_a_positive_duration(text):
  with pytest.raises(ValueError):
    durations.seconds(text)


@pytest.mark.parametrize("total, expected", [
    (7.46, "7.5s"), (59.9, "59.9s"), (60, "1m00s"), (245, "4m05s"),
    (3723.4, "1h02m03s")])
def test_describe(total, expected):
  assert durations.describe(total) == expected


def test_train_config_refuses_a_budget_that_is_not_a_duration():
  with pytest.raises(errors.ArgumentError) as raised:
    config.TrainConfig(time_budget="soon")
  assert str(raised.value) == (
      "Invalid value for argument `time_budget`. Received: "
      "time_budget='soon'. Expected a duration such as 45m, 1h30m, 2.5h or "
      "900s (empty: off, and num_train_epochs rules).")


def test_train_config_takes_a_budget_and_none():
  assert config.TrainConfig(time_budget="1h30m").time_budget == "1h30m"
  assert config.TrainConfig().time_budget == ""
