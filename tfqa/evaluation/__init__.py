"""Per-window logits -> answers (decoding) -> official SQuAD metrics; scoring a predictions file."""
