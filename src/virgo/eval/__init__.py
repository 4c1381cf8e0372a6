"""Evaluation: benchmark registry, eval runs, reports."""
