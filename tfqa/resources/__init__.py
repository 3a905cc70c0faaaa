"""Data files shipped with tfqa: the embedded SQuAD-format sample (see README.md here)."""
