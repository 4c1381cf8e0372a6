"""A tiny typed-record base: dataclass fields validated on load, unknown fields kept.

Records cross stage boundaries as JSONL. Loading checks each declared field's type and names the
field in the error; fields a record does not declare are kept in ``extra`` and written back out, so a
round trip never loses information another tool put there.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Record")


class RecordError(ValueError):
    """A bad record: says where (file, line) and which field, and what is wrong."""

    def __init__(self, message: str, *, field: str | None = None, path: str | Path | None = None,
                 line: int | None = None):
        self.message = message
        self.field = field
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        elif self.line is not None:
            where = f"line {self.line}: "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}"

    def located(self, path: str | Path, line: int) -> RecordError:
        return RecordError(self.message, field=self.field, path=path, line=line)


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
        raise RecordError(f"expected {_type_name(tp)}, got {type(value).__name__}", field=field)
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"expected a list, got {type(value).__name__}", field=field)
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [_check(v, item_tp, f"{field}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise RecordError(f"expected an object, got {type(value).__name__}", field=field)
        return value
    if tp is float:
        # JSON has one number type: accept ints where floats are declared, never bools.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"expected a number, got {type(value).__name__}", field=field)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(f"expected an integer, got {type(value).__name__}", field=field)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise RecordError(f"expected a string, got {type(value).__name__}", field=field)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise RecordError(f"expected true/false, got {type(value).__name__}", field=field)
        return value
    return value


@dataclasses.dataclass
class Record:
    """Base class: subclasses are dataclasses; ``extra`` holds fields they do not declare."""

    # Fields whose values are image paths, resolved relative to the JSONL file that names them.
    IMAGE_FIELDS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}

    @classmethod
    def from_dict(cls: type[T], data: Any, *, base_dir: str | Path | None = None) -> T:
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, f in cls._fields().items():
            if name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise RecordError("missing required field", field=name)
                continue
            kwargs[name] = _check(data[name], hints[name], name)
        kwargs["extra"] = {k: v for k, v in data.items() if k not in kwargs and k not in cls._fields()}
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
        base = Path(base_dir)
        for name in self.IMAGE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, [_resolve(base, p) for p in value])
            elif isinstance(value, str):
                setattr(self, name, _resolve(base, value))

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self._fields()}
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out


def _resolve(base: Path, p: str) -> str:
    # URLs and data: URIs are left alone; relative paths are relative to the file naming them.
    if "://" in p or p.startswith("data:") or Path(p).is_absolute():
        return p
    return str((base / p).resolve())
