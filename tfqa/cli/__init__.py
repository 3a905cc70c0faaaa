"""Thin absl entry points: flags -> config -> one library call."""
