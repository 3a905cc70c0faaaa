"""Inference: logits functions of every model kind, batches of windows, answers, predictors."""
