"""The model: where it comes from (source, TF-free) and how it is built."""
