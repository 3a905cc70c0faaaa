"""Tests for tfqa.data.windows: tokenization, windows, labels, offsets."""

import numpy as np
import pytest

from tfqa import config
from tfqa.data import squad as data
from tfqa.data import windows
from tfqa.evaluation import metrics


def _example(question, context, answer=None, qid="q1", impossible=False):
  if answer is None:
    texts, starts = (), ()
  else:
    texts, starts = (answer,), (context.index(answer),)
  return data.SquadExample(id=qid, title="t", question=question,
                           context=context, answer_texts=texts,
                           answer_starts=starts, is_impossible=impossible)


def _tokens(tokenizer, ids):
  return tokenizer.convert_ids_to_tokens([int(i) for i in ids])


@pytest.mark.parametrize("num_tokens,max_tokens,stride,expected", [
    (10, 4, 2, [0, 2, 4, 6]),
    (3, 4, 2, [0]),
    (4, 4, 2, [0]),
    (5, 4, 4, [0, 4]),
    (0, 4, 2, [0]),
])
def test_window_starts(num_tokens, max_tokens, stride, expected):
  assert windows.window_starts(num_tokens, max_tokens, stride) == expected


def test_single_window_layout_and_labels(tokenizer):
  example = _example("what is the capital?", "paris is the capital of france.",
                     answer="paris")
  built = windows.build_features([example], tokenizer, config.FeatureConfig())
  assert len(built) == 1
  assert _tokens(tokenizer, built.input_ids[0]) == [
      "[CLS]", "what", "is", "the", "capital", "?", "[SEP]", "paris", "is",
      "the", "capital", "of", "france", ".", "[SEP]"]
  assert built.token_type_ids[0].tolist() == [0] * 7 + [1] * 8
  assert built.context_offset.tolist() == [7]
  assert (built.start_positions[0], built.end_positions[0]) == (7, 7)
  assert built.token_char_spans[0].tolist() == [
      [0, 5], [6, 8], [9, 12], [13, 20], [21, 23], [24, 30], [30, 31]]
  assert windows.labelled_answer_text(built, 0, [example]) == "paris"


def test_question_is_truncated_to_max_query_length(tokenizer):
  example = _example("what is the capital of the city", "paris.", "paris")
  cfg = config.FeatureConfig(max_seq_length=16, doc_stride=2,
                             max_query_length=3)
  built = windows.build_features([example], tokenizer, cfg)
  assert _tokens(tokenizer, built.input_ids[0]) == [
      "[CLS]", "what", "is", "the", "[SEP]", "paris", ".", "[SEP]"]


def test_long_context_is_windowed_and_every_window_labelled(tokenizer):
  # 20 one-token words; question "who" (1 token) leaves 12 - 1 - 3 = 8
  # context tokens per window; stride 4 -> windows start at 0, 4, 8, 12.
  context = " ".join(["the"] * 13 + ["keeper"] + ["the"] * 6)
  example = _example("who", context, answer="keeper")
  cfg = config.FeatureConfig(max_seq_length=12, doc_stride=4,
                             max_query_length=4)
  built = windows.build_features([example], tokenizer, cfg)
  assert built.example_index.tolist() == [0, 0, 0, 0]
  assert [len(ids) for ids in built.input_ids] == [12, 12, 12, 12]
  assert [len(s) for s in built.token_char_spans] == [8, 8, 8, 8]
  # Window 3 covers context tokens 12..19, the end of the context.
  assert built.token_char_spans[3][-1].tolist() == [len(context) - 3,
                                                    len(context)]
  labelled = [windows.labelled_answer_text(built, w, [example])
              for w in range(len(built))]
  # "keeper" is token 13: inside windows 2 (8..15) and 3 (12..19).
  assert labelled == ["", "", "keeper", "keeper"]
  assert built.start_positions.tolist() == [0, 0, 13 - 8 + 3, 13 - 12 + 3]
  for window, text in enumerate(labelled):
    if text == "":
      assert (built.start_positions[window], built.end_positions[window]) == (
          0, 0)


def test_impossible_example_is_labelled_with_cls(tokenizer):
  example = _example("who built the lighthouse?", "the town of paris.",
                     impossible=True)
  built = windows.build_features([example], tokenizer, config.FeatureConfig())
  assert built.start_positions.tolist() == [0]
  assert built.end_positions.tolist() == [0]


def test_unicode_offsets_point_at_original_characters(tokenizer):
  context = "Zoë built the lighthouse in 1887."
  example = _example("who built the lighthouse?", context, answer="Zoë")
  built = windows.build_features([example], tokenizer, config.FeatureConfig())
  assert windows.labelled_answer_text(built, 0, [example]) == "Zoë"
  year = example.context.index("1887")
  spans = built.token_char_spans[0]
  assert [context[s:e] for s, e in spans if s >= year] == [
      "1", "8", "8", "7", "."]


def test_answer_inside_a_word_piece_is_widened_to_whole_tokens(tokenizer):
  # Answer "887" starts inside the token sequence 1 ##8 ##8 ##7? With the tiny
  # vocab digits after the first are suffix pieces, so the span covers them.
  context = "built in 1887."
  example = data.SquadExample(
      id="q", title="", question="when?", context=context,
      answer_texts=("887",), answer_starts=(10,))
  built = windows.build_features([example], tokenizer, config.FeatureConfig())
  assert windows.labelled_answer_text(built, 0, [example]) == "887"


def test_load_tokenizer_errors(tmp_path, vocab_file):
  with pytest.raises(ValueError, match="needs `do_lower_case`"):
    windows.load_tokenizer(vocab_file)
  with pytest.raises(ValueError, match="does not exist"):
    windows.load_tokenizer(str(tmp_path / "missing"))
  with pytest.raises(ValueError, match="holds neither tokenizer.json nor"):
    windows.load_tokenizer(str(tmp_path))


def test_real_data_labels_decode_to_gold_answers(bert_tokenizer,
                                                 shared_sample_path):
  squad = data.answerable_only(data.load_squad_json(shared_sample_path))
  examples = squad.examples
  built = windows.build_features(examples, bert_tokenizer,
                                  config.FeatureConfig())
  recovered = {}
  for window in range(len(built)):
    text = windows.labelled_answer_text(built, window, examples)
    if text:
      recovered.setdefault(int(built.example_index[window]), text)
  exceptions = []
  for index, example in enumerate(examples):
    got = recovered.get(index, "")
    if metrics.normalize_answer(got) != metrics.normalize_answer(
        example.answer_texts[0]):
      exceptions.append((example.id, example.answer_texts[0], got))
  rate = 1 - len(exceptions) / len(examples)
  print(f"\nlabel round-trip: {len(examples) - len(exceptions)}/{len(examples)}"
        f" = {rate:.4%}; exceptions:")
  for qid, gold, got in exceptions:
    print(f"  {qid}: gold={gold!r} decoded={got!r}")
  assert len(examples) == 705
  assert rate >= 0.995
