"""Typed records shared by all pipeline stages, persisted as JSONL."""

from virgo.records.base import Record, RecordError
from virgo.records.example import LongThoughtExample
from virgo.records.generation import FINISH_REASONS, Generation
from virgo.records.grade import VERDICTS, Grade
from virgo.records.jsonl import AppendWriter, ReadResult, done_keys, read_records, write_records
from virgo.records.problem import Problem

__all__ = [
    "AppendWriter", "FINISH_REASONS", "Generation", "Grade", "LongThoughtExample", "Problem", "ReadResult",
    "Record", "RecordError", "VERDICTS", "done_keys", "read_records", "write_records",
]
