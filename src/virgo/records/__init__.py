"""Typed records shared by all pipeline stages, persisted as JSONL."""

from virgo.records.base import Record, RecordError
from virgo.records.example import LongThoughtExample, SFTExample, example_from_dict
from virgo.records.generation import FINISH_REASONS, Generation
from virgo.records.grade import VERDICTS, Grade
from virgo.records.jsonl import (
    AppendWriter,
    NoUsableRecords,
    ReadResult,
    done_keys,
    read_all,
    read_records,
    write_records,
)
from virgo.records.problem import Problem

__all__ = [
    "FINISH_REASONS", "VERDICTS", "AppendWriter", "Generation", "Grade", "LongThoughtExample", "NoUsableRecords",
    "Problem", "ReadResult", "Record", "RecordError", "SFTExample", "done_keys", "example_from_dict", "read_all",
    "read_records", "write_records",
]
