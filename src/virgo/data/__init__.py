"""Data tools: convert, stats, select, validate long-thought records."""
