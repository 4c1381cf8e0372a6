"""Grading: answer extraction and equivalence; safe, bounded, auditable."""
