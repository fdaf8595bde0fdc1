"""Evaluation: accuracy on task families and benchmarks, TDS, the lm-eval model, reports."""
