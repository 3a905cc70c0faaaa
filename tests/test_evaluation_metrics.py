"""Tests for tfqa.evaluation.metrics against hand-computed SQuAD v1.1 and v2.0 scores."""

import collections
import math

import pytest

from tfqa.evaluation import metrics


# --- normalize_answer -------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Cat", "cat"),
        ("A an THE apple", "apple"),
        # "the" and "an" inside words are not articles.
        ("Theater and other thesis", "theater and other thesis"),
        ("an ant", "ant"),
        ("Hello, world!", "hello world"),
        ("U.S.A.", "usa"),
        ("  many   spaces\tand\nnewlines ", "many spaces and newlines"),
        # Punctuation goes before articles: "a-b" -> "ab", not "b".
        ("a-b", "ab"),
        # ...and "the." loses its dot first, then is an article.
        ("the.", ""),
        ("o'the", "othe"),
        # string.punctuation is ASCII only: the em dash stays.
        ("Café — ok", "café — ok"),
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
  assert metrics.normalize_answer(text) == expected


# --- exact_match_score and f1_score ----------------------------------------


def test_exact_match_ignores_case_punctuation_and_articles():
  score = metrics.exact_match_score("The Cat!", "cat")
  assert score == 1
  assert isinstance(score, int)
  assert metrics.exact_match_score("cat", "cats") == 0


def test_f1_partial_overlap():
  # Tokens: pred [cat, sat], gold [cat, sat, down]; 2 in common.
  # P = 2/2 = 1, R = 2/3, F1 = 2*1*(2/3) / (1 + 2/3) = (4/3) / (5/3) = 0.8.
  score = metrics.f1_score("the cat sat", "a cat sat down")
  assert score == pytest.approx(0.8)


def test_f1_counts_repeated_tokens_once_per_occurrence():
  # pred [cat, cat, dog], gold [cat, dog, dog]: common = min(2,1) + min(1,2)
  # = 2.
  # P = 2/3, R = 2/3, F1 = 2/3.
  assert metrics.f1_score("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "prediction, gold, expected",
    [
        ("", "", 1.0),  # Both no-answer.
        ("the", "", 1.0),  # "the" normalizes to no tokens.
        ("", "cat", 0.0),
        ("cat", "", 0.0),
        ("cat", "dog", 0.0),  # No common token.
        ("Cat.", "the cat", 1.0),
    ],
)
def test_f1_edge_cases(prediction, gold, expected):
  score = metrics.f1_score(prediction, gold)
  assert score == expected
  assert isinstance(score, float)


# --- squad_v1_metrics ---------------------------------------------------------


def test_v1_scores_counts_missing_and_takes_max_over_golds():
  gold = {
      "q1": ["Paris", "the city of Paris"],
      "q2": ["blue whale"],
      "q3": ["1945"],
  }
  predictions = {"q1": "city of Paris", "q2": "whale", "extra": "ignored"}
  # q1: matches "the city of Paris" exactly -> EM 1, F1 1 (max over golds).
  # q2: pred [whale], gold [blue, whale]: P = 1, R = 1/2 -> F1 = 2/3, EM 0.
  # q3: missing -> 0, still counted in total.
  # EM = 100 * 1/3; F1 = 100 * (1 + 2/3) / 3 = 100 * 5/9.
  result = metrics.squad_v1_metrics(gold, predictions)
  assert list(result) == ["exact_match", "f1", "total", "missing"]
  assert result["exact_match"] == pytest.approx(100 / 3)
  assert result["f1"] == pytest.approx(500 / 9)
  assert result["total"] == 3
  assert result["missing"] == 1


def test_v1_f1_takes_max_over_gold_answers():
  # vs "dog": 0. vs "cat sat down": P = 2/2, R = 2/3 -> 0.8. Max = 0.8.
  result = metrics.squad_v1_metrics({"q": ["dog", "cat sat down"]},
                                    {"q": "cat sat"})
  assert result["exact_match"] == 0.0
  assert result["f1"] == pytest.approx(80.0)


def test_v1_f1_of_empty_strings_follows_evaluate_v1_1():
  # Both "" and "the" normalize to "": EM 1. evaluate-v1.1.py has no empty
  # case in its F1, so 0 common tokens give F1 0 (v2.0 would give 1).
  result = metrics.squad_v1_metrics({"q": ["the"]}, {"q": ""})
  assert result["exact_match"] == 100.0
  assert result["f1"] == 0.0
  assert metrics.f1_score("", "the") == 1.0


# --- squad_v2_metrics ---------------------------------------------------------


def _four_questions():
  gold = {
      "q1": ["Paris"],
      "q2": ["blue whale"],
      "q3": [],
      "q4": [],
  }
  predictions = {"q1": "Paris", "q2": "whale", "q3": "", "q4": "Berlin"}
  return gold, predictions


def test_v2_breakdown_keys_and_values():
  gold, predictions = _four_questions()
  # q1: EM 1, F1 1.  q2: EM 0, F1 2/3 (P = 1, R = 1/2).
  # q3: "" on no-answer -> EM 1, F1 1.  q4: text on no-answer -> 0, 0.
  # exact = 100 * 2/4 = 50; f1 = 100 * (1 + 2/3 + 1 + 0) / 4 = 100 * 2/3.
  # HasAns (q1, q2): exact 50, f1 = 100 * (5/3) / 2 = 250/3.
  # NoAns (q3, q4): exact 50, f1 50.
  result = metrics.squad_v2_metrics(gold, predictions)
  assert isinstance(result, collections.OrderedDict)
  expected = {"exact": 50.0, "f1": 200 / 3, "total": 4,
              "HasAns_exact": 50.0, "HasAns_f1": 250 / 3, "HasAns_total": 2,
              "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2,
              "missing": 0}
  assert list(result) == list(expected)
  # rel=1e-12: the thirds are the only inexact values.
  assert result == pytest.approx(expected, rel=1e-12)


def test_v2_unanswerable_scores():
  gold = {"q": []}
  assert metrics.squad_v2_metrics(gold, {"q": ""})["exact"] == 100.0
  assert metrics.squad_v2_metrics(gold, {"q": ""})["f1"] == 100.0
  assert metrics.squad_v2_metrics(gold, {"q": "Berlin"})["exact"] == 0.0
  assert metrics.squad_v2_metrics(gold, {"q": "Berlin"})["f1"] == 0.0


def test_v2_omits_empty_subsets():
  only_answerable = metrics.squad_v2_metrics({"q": ["cat"]}, {"q": "cat"})
  assert list(only_answerable) == [
      "exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
      "missing"
  ]
  only_unanswerable = metrics.squad_v2_metrics({"q": []}, {"q": ""})
  assert list(only_unanswerable) == [
      "exact", "f1", "total", "NoAns_exact", "NoAns_f1", "NoAns_total",
      "missing"
  ]


def test_v2_drops_gold_texts_that_normalize_to_empty():
  # "a" normalizes to "" and is dropped, leaving ["Eiffel Tower"]: a "" pred
  # scores 0 (v1.1, which keeps "a", would give EM 1).
  result = metrics.squad_v2_metrics({"q": ["a", "Eiffel Tower"]}, {"q": ""})
  assert result["exact"] == 0.0
  assert result["f1"] == 0.0
  # All golds dropped -> gold [""]; the question still counts as answerable
  # because its raw gold list is non-empty (official make_qid_to_has_ans).
  result = metrics.squad_v2_metrics({"q": ["the", " . "]}, {"q": ""})
  assert result["exact"] == 100.0
  assert result["f1"] == 100.0
  assert result["HasAns_total"] == 1
  assert "NoAns_total" not in result


def test_v2_takes_max_over_gold_answers():
  # vs "dog": 0. vs "cat sat down": P = 1, R = 2/3 -> F1 0.8; EM 0 vs both.
  result = metrics.squad_v2_metrics({"q": ["dog", "cat sat down"]},
                                    {"q": "cat sat"})
  assert result["exact"] == 0.0
  assert result["f1"] == pytest.approx(80.0)


@pytest.mark.parametrize(
    "thresh, expected_exact, expected_has_ans_exact",
    [
        # No prediction is null: q1 right (1), q2 "Berlin" on no-answer (0).
        (1.0, 50.0, 100.0),
        # q2 (0.8 > 0.5) becomes null -> 1; q1 (0.3) kept -> 1.
        (0.5, 100.0, 100.0),
        # Strictly greater: q1 (0.3 > 0.3 is false) is kept.
        (0.3, 100.0, 100.0),
        # q1 (0.3 > 0.2) becomes null on an answerable question -> 0.
        (0.2, 50.0, 0.0),
    ],
)
def test_v2_na_prob_thresh(thresh, expected_exact, expected_has_ans_exact):
  gold = {"q1": ["Paris"], "q2": []}
  predictions = {"q1": "Paris", "q2": "Berlin"}
  result = metrics.squad_v2_metrics(
      gold, predictions, na_probs={"q1": 0.3, "q2": 0.8}, na_prob_thresh=thresh)
  assert result["exact"] == expected_exact
  assert result["f1"] == expected_exact
  assert result["HasAns_exact"] == expected_has_ans_exact


def test_v2_without_na_probs_uses_zero_probabilities():
  # As officially, every prediction has na_prob 0.0; 0.0 > -1.0 nulls all:
  # q1 (answerable) -> 0, q2 (unanswerable) -> 1.
  result = metrics.squad_v2_metrics({"q1": ["Paris"], "q2": []},
                                    {"q1": "Paris", "q2": "Berlin"},
                                    na_prob_thresh=-1.0)
  assert result["exact"] == 50.0
  assert result["HasAns_exact"] == 0.0
  assert result["NoAns_exact"] == 100.0
  assert "best_exact" not in result


def test_v2_best_threshold_search():
  gold = {
      "a": ["cat"],
      "b": ["big dog"],
      "c": [],
      "d": [],
      "e": ["red fish"],
  }
  predictions = {
      "a": "cat", "b": "dog", "c": "mouse", "d": "", "e": "blue fish"
  }
  na_probs = {"a": 0.1, "b": 0.4, "c": 0.5, "d": 0.2, "e": 0.9}
  # Raw scores (EM, F1): a (1, 1); b (0, 2/3: P = 1, R = 1/2); c no-answer with
  # text; d no-answer with ""; e (0, 1/2: P = 1/2, R = 1/2).
  # Start: all null -> 2 points (c, d), thresh 0.0. Un-null by na_prob:
  #   F1: a +1 -> 3 (best, 0.1); d +0 -> 3; b +2/3 -> 11/3 (best, 0.4);
  #       c -1 -> 8/3; e +1/2 -> 19/6.  best_f1 = 100 * (11/3) / 5 = 220/3.
  #   EM: a +1 -> 3 (best, 0.1); d +0; b +0 (not strictly better); c -1; e +0.
  #       best_exact = 100 * 3 / 5 = 60.
  # At the default thresh 1.0 nothing is null: exact = 100 * 2/5 = 40,
  # f1 = 100 * (1 + 2/3 + 0 + 1 + 1/2) / 5 = 100 * 19/30 = 190/3.
  result = metrics.squad_v2_metrics(gold, predictions, na_probs=na_probs)
  assert list(result)[-5:] == [
      "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh", "missing"
  ]
  assert {name: result[name] for name in (
      "exact", "f1", "best_exact", "best_exact_thresh", "best_f1",
      "best_f1_thresh")} == pytest.approx({
          "exact": 40.0, "f1": 190 / 3, "best_exact": 60.0,
          "best_exact_thresh": 0.1, "best_f1": 220 / 3,
          "best_f1_thresh": 0.4}, rel=1e-12)
  # The best F1 threshold really gives the best F1.
  at_best = metrics.squad_v2_metrics(
      gold, predictions, na_probs=na_probs, na_prob_thresh=0.4)
  assert at_best["f1"] == pytest.approx(220 / 3)


def test_v2_best_threshold_keeps_zero_when_nulling_all_is_best():
  # Start 1 (one no-answer question); un-nulling "dog" costs 1 -> 0.
  result = metrics.squad_v2_metrics({"q": []}, {"q": "dog"},
                                    na_probs={"q": 0.3})
  assert result["best_exact"] == 100.0
  assert result["best_exact_thresh"] == 0.0


@pytest.mark.parametrize(
    "na_probs, expected_best, expected_thresh",
    [
        # Start 1 (y). x: +1 -> 2 (best, 0.5); y: -1 -> 1.
        ({"x": 0.5, "y": 0.5}, 100.0, 0.5),
        # y: -1 -> 0; x: +1 -> 1, not strictly better than 1 -> thresh 0.0.
        ({"y": 0.5, "x": 0.5}, 50.0, 0.0),
    ],
)
def test_v2_best_threshold_ties_follow_mapping_order(na_probs, expected_best,
                                                     expected_thresh):
  result = metrics.squad_v2_metrics({"x": ["cat"], "y": []},
                                    {"x": "cat", "y": "dog"},
                                    na_probs=na_probs)
  assert result["best_exact"] == expected_best
  assert result["best_exact_thresh"] == expected_thresh


@pytest.mark.parametrize(
    "no_answer_pred, expected_best, expected_thresh",
    [
        # "the" is a non-empty raw string: un-nulling costs 1 (official), even
        # though it normalizes to "" and scores 1. Start 1; n -1 -> 0;
        # h +1 -> 1, not better -> 50%, thresh 0.0.
        ("the", 50.0, 0.0),
        # "": n +0 -> 1; h +1 -> 2 (best, 0.5) -> 100%.
        ("", 100.0, 0.5),
    ],
)
def test_v2_best_threshold_checks_raw_prediction(no_answer_pred, expected_best,
                                                 expected_thresh):
  result = metrics.squad_v2_metrics({"h": ["cat"], "n": []},
                                    {"h": "cat", "n": no_answer_pred},
                                    na_probs={"h": 0.5, "n": 0.3})
  assert result["exact"] == 100.0
  assert result["best_exact"] == expected_best
  assert result["best_exact_thresh"] == expected_thresh


def test_v2_missing_ids_score_zero_and_count_in_total():
  gold = {"q1": ["Paris"], "q2": [], "q3": []}
  predictions = {"q1": "Paris"}
  # q2 and q3 are missing: 0 each (no "" is assumed), still in every total.
  result = metrics.squad_v2_metrics(gold, predictions)
  assert result["exact"] == pytest.approx(100 / 3)
  assert result["total"] == 3
  assert result["NoAns_exact"] == 0.0
  assert result["NoAns_total"] == 2
  assert result["missing"] == 2


def test_v2_missing_ids_get_no_threshold_or_best_thresh_credit():
  gold = {"q1": ["Paris"], "q2": [], "q3": []}
  predictions = {"q1": "Paris"}
  # na_probs need not cover missing ids; a listed one (q2) is skipped.
  # Nulling: q1 (0.2 > 0.1) -> 0 on an answerable question; q2, q3 stay 0.
  # Best search: start 0 (no predicted no-answer question); q1 +1 -> 1
  # (best, 0.2); best_exact = 100 * 1 / 3.
  result = metrics.squad_v2_metrics(
      gold, predictions, na_probs={"q1": 0.2, "q2": 0.9}, na_prob_thresh=0.1)
  assert result["exact"] == 0.0
  assert result["NoAns_exact"] == 0.0
  assert result["best_exact"] == pytest.approx(100 / 3)
  assert result["best_exact_thresh"] == 0.2


# --- Input validation ---------------------------------------------------------


@pytest.mark.parametrize("scorer", [
    metrics.squad_v1_metrics,
    metrics.squad_v2_metrics,
])
@pytest.mark.parametrize(
    "gold, predictions, match",
    [
        ({"q1": ["a"]}, {"q1": 3}, r"question id 'q1'.*3 of type int"),
        ({"q1": ["a"]}, {"q1": None},
         r"question id 'q1'.*None of type NoneType"),
        ({"q1": ["a"]}, ["a"], r"`predictions`.*of type list"),
        ({}, {}, r"`gold_answers`. Received: \{\} of type dict"),
        ([["a"]], {}, r"`gold_answers`.*of type list"),
        ({"q1": "Paris"}, {}, r"question id 'q1'.*'Paris' of type str"),
        ({"q1": [3]}, {}, r"question id 'q1'.*\[3\] of type list"),
    ],
)
def test_invalid_inputs_raise(scorer, gold, predictions, match):
  with pytest.raises(ValueError, match=match):
    scorer(gold, predictions)


def test_v1_rejects_unanswerable_questions():
  with pytest.raises(ValueError, match=r"question id 'q2'.*squad_v2_metrics"):
    metrics.squad_v1_metrics({"q1": ["a"], "q2": []}, {"q1": "a"})


@pytest.mark.parametrize(
    "na_probs, match",
    [
        ({"q": math.nan}, r"question id 'q'.*nan of type float"),
        ({"q": math.inf}, r"question id 'q'.*inf of type float"),
        ({"q": "0.5"}, r"question id 'q'.*'0.5' of type str"),
        ({"q": True}, r"question id 'q'.*True of type bool"),
        ({"q": 0.5, "other": None}, r"question id 'other'.*None"),
        ({}, r"Missing no-answer probability for question id 'q'"),
        ([0.5], r"`na_probs`.*of type list"),
    ],
)
def test_v2_invalid_na_probs_raise(na_probs, match):
  with pytest.raises(ValueError, match=match):
    metrics.squad_v2_metrics({"q": []}, {"q": ""}, na_probs=na_probs)


@pytest.mark.parametrize("thresh", [math.nan, math.inf, "1.0", None])
def test_v2_invalid_na_prob_thresh_raises(thresh):
  with pytest.raises(ValueError,
                     match=r"`na_prob_thresh`. Received: .* of type"):
    metrics.squad_v2_metrics({"q": []}, {"q": ""}, na_prob_thresh=thresh)


# --- Helpers ------------------------------------------------------------------


def test_answer_id_helpers():
  gold = {"a": ["x"], "b": [], "c": ["the"], "d": []}
  assert metrics.has_answer_ids(gold) == ["a", "c"]
  assert metrics.no_answer_ids(gold) == ["b", "d"]


def test_squad_metrics_picks_the_version():
  gold = {"a": ["Paris"], "b": []}
  predictions = {"a": "paris", "b": ""}
  assert metrics.squad_metrics({"a": ["Paris"]}, {"a": "paris"},
                               version_2=False) == metrics.squad_v1_metrics(
                                   {"a": ["Paris"]}, {"a": "paris"})
  assert metrics.squad_metrics(gold, predictions, version_2=True,
                               na_probs={"a": 0.0, "b": 1.0}) == dict(
                                   metrics.squad_v2_metrics(
                                       gold, predictions,
                                       na_probs={"a": 0.0, "b": 1.0}))


# headline


def test_headline_of_v1_metrics():
  assert metrics.headline({"exact_match": 30.208, "f1": 42.3149, "total": 96,
                           "missing": 0}) == (
                               "EM 30.21, F1 42.31 on 96 questions")


def test_headline_of_v2_metrics_names_both_kinds_and_the_best_threshold():
  assert metrics.headline({
      "exact": 18.18, "f1": 28.535, "total": 11, "HasAns_exact": 12.5,
      "HasAns_f1": 26.736, "HasAns_total": 8, "NoAns_exact": 33.3,
      "NoAns_f1": 33.333, "NoAns_total": 3, "best_exact": 36.36,
      "best_exact_thresh": -0.47, "best_f1": 36.364,
      "best_f1_thresh": -0.4704227, "missing": 2}) == (
          "EM 18.18, F1 28.54 on 11 questions (answerable 8: F1 26.74; "
          "unanswerable 3: F1 33.33); best F1 36.36 at no-answer threshold "
          "-0.4704; 2 questions without a prediction")


def test_headline_of_real_v2_metrics_without_unanswerable_questions():
  # Without no-answer probabilities there is no best threshold to report.
  result = metrics.squad_metrics({"a": ["cat"], "b": ["dog"]},
                                 {"a": "cat", "b": "a bird"}, version_2=True)
  assert metrics.headline(result) == (
      "EM 50.00, F1 50.00 on 2 questions (answerable 2: F1 50.00)")
