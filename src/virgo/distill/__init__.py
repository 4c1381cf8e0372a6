"""Distillation and self-distillation of visual long-thought data."""
