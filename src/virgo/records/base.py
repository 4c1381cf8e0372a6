"""A tiny typed-record base: dataclass fields validated on load, unknown fields kept.

Records cross stage boundaries as JSONL. Loading checks each declared field's type and names the
field in the error; fields a record does not declare are kept in ``extra`` and written back out, so a
round trip never loses information another tool put there.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from virgo.records.paths import path_problem, resolve_path

if TYPE_CHECKING:
    from typing_extensions import Self


class RecordError(ValueError):
    """A bad record: says where (file, line) and which field, and what is wrong."""

    user_facing = True  # the CLI prints it as one line, no traceback (virgo.config.cli)

    def __init__(self, message: str, *, field: str | None = None, path: str | Path | None = None,
                 line: int | None = None):
        self.message = message
        self.field = field
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(self.format())

    def format(self, *, with_path: bool = True) -> str:
        where = ""
        if self.path is not None and with_path:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        elif self.line is not None:
            where = f"line {self.line}: "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}"

    def located(self, path: str | Path, line: int) -> RecordError:
        return RecordError(self.message, field=self.field, path=path, line=line)


def json_kind(value: Any) -> str:
    # Python's names for what was found, but JSON's null rather than "NoneType".
    return "null" if value is None else type(value).__name__


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check(value: Any, tp: Any, field: str) -> Any:
    """Check ``value`` against a simple annotation; returns the (possibly coerced) value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(value, arg, field)
            except RecordError as e:
                errors.append(e)
        raise RecordError(f"expected {_type_name(tp)}, got {json_kind(value)}", field=field)
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"expected a list, got {json_kind(value)}", field=field)
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [_check(v, item_tp, f"{field}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise RecordError(f"expected an object, got {json_kind(value)}", field=field)
        return value
    if tp is float:
        # JSON has one number type: accept ints where floats are declared, never bools.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"expected a number, got {json_kind(value)}", field=field)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(f"expected an integer, got {json_kind(value)}", field=field)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise RecordError(f"expected a string, got {json_kind(value)}", field=field)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise RecordError(f"expected true/false, got {json_kind(value)}", field=field)
        return value
    return value


@functools.cache
def _declared(cls: type) -> tuple[dict[str, dataclasses.Field], dict[str, Any]]:
    # Per class, once: dataclasses.fields and get_type_hints cost more than reading a record.
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
    return fields, typing.get_type_hints(cls)


@dataclasses.dataclass
class Record:
    """Base class: subclasses are dataclasses; ``extra`` holds fields they do not declare."""

    # Fields whose values are image paths, resolved relative to the JSONL file that names them.
    IMAGE_FIELDS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _fields(cls) -> dict[str, dataclasses.Field]:
        return _declared(cls)[0]

    @classmethod
    def from_dict(cls, data: Any, *, base_dir: str | Path | None = None) -> Self:
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {json_kind(data)}")
        fields, hints = _declared(cls)
        kwargs: dict[str, Any] = {}
        for name, f in fields.items():
            if name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise RecordError("missing required field", field=name)
                continue
            kwargs[name] = _check(data[name], hints[name], name)
        kwargs["extra"] = {k: v for k, v in data.items() if k not in kwargs and k not in fields}
        rec = cls(**kwargs)
        if base_dir is not None:
            rec.resolve_images(base_dir)
        rec.validate()
        return rec

    def validate(self) -> None:
        """Per-record semantic checks beyond types; raise RecordError naming the field."""

    def require_nonempty(self, *names: str) -> None:
        """Raise RecordError for the first of ``names`` whose string value is empty or blank."""
        for name in names:
            if not getattr(self, name).strip():
                raise RecordError("must not be empty", field=name)

    def resolve_images(self, base_dir: str | Path) -> None:
        """Make relative image paths absolute, relative to ``base_dir`` (the file's folder); never raises."""
        for name in self.IMAGE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, [resolve_path(base_dir, p) for p in value])
            elif isinstance(value, str):
                setattr(self, name, resolve_path(base_dir, value))

    def image_paths(self) -> Iterator[tuple[str, str]]:
        """(field, path) of every image the record names: ``images[0]`` for a list item, the name for a string."""
        for name in self.IMAGE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                yield from ((f"{name}[{i}]", p) for i, p in enumerate(value))
            elif isinstance(value, str):
                yield name, value

    def check_images(self) -> None:
        """Raise RecordError, naming the field, for the first local image that is not a readable file."""
        for where, p in self.image_paths():
            problem = path_problem(p)
            if problem:
                raise RecordError(problem, field=where)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self._fields()}
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out
