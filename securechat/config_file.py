"""The configuration file: TOML whose values become the defaults of ``serve`` and the admin
commands, so that a long command line fits in one file.

Precedence, for every value: command line > environment variable > file > embedded default.
The keys are not listed here: the CLI derives them from its commands' own options
(:mod:`securechat.cli.configuration`) and hands this module a :data:`Schema`, so the file and
the command line cannot drift apart. This module reads a file and checks it against such a
schema (naming the file and the key in every error), reads secret files, and writes TOML
back for ``securechat config show``. Secrets never sit in the file itself: a ``*_file`` key
names a file holding one (mode 0600 or 0640), read by :func:`read_secret`.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from securechat.errors import ConfigFileError

__all__ = ["Key", "Kind", "Schema", "Settings", "load", "read_secret", "render", "toml_value"]

#: How a secret file may end: one line, its newline removed.
_NEWLINES = ("\r\n", "\n")


class Kind(enum.Enum):
    """The TOML type a key takes."""

    STRING = "a string"
    PATH = "a path (a string; relative to the file's folder)"
    INTEGER = "an integer"
    FLOAT = "a number"
    BOOLEAN = "true or false"
    STRING_LIST = "a list of strings"
    TABLES = "an array of tables ([[table.key]] sections)"


@dataclasses.dataclass(frozen=True, slots=True)
class Key:
    """One key the file may hold: its type, bounds and choices (``None``: any)."""

    kind: Kind
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    #: For :attr:`Kind.TABLES`: the keys each of its tables may hold, and those it must.
    fields: Mapping[str, Key] | None = None
    required: tuple[str, ...] = ()


#: Table name (``None``: the top level) -> key -> what it takes.
Schema = Mapping[str | None, Mapping[str, Key]]


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """A checked file: ``tables[None]`` holds its top-level keys; paths made absolute."""

    path: Path
    tables: Mapping[str | None, Mapping[str, Any]]

    def get(self, key: str, table: str | None = None) -> Any:
        return self.tables.get(table, {}).get(key)


def load(path: Path, schema: Schema) -> Settings:
    """Read and check the file at ``path``.

    Raises:
        ConfigFileError: the file is missing or unreadable, not TOML, or holds a key the
            schema does not know or a value of the wrong type or out of bounds.
    """
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigFileError(
            f"no configuration file {path} (from --config or SECURECHAT_CONFIG)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot read the configuration file {path}: {_reason(exc)}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from exc
    folder = path.absolute().parent
    tables: dict[str | None, dict[str, Any]] = {None: {}}
    for name, value in document.items():
        if name in schema and name is not None and isinstance(value, dict):
            tables[name] = _table(path, folder, name, value, schema)
        elif isinstance(value, dict):
            known = ", ".join(f"[{table}]" for table in schema if table is not None)
            raise ConfigFileError(f"{path}: unknown table [{name}]; known tables: {known}")
        else:
            tables[None][name] = _value(path, folder, None, name, value, schema)
    return Settings(path=path, tables=tables)


def _table(
    path: Path, folder: Path, table: str, values: dict[str, Any], schema: Schema
) -> dict[str, Any]:
    return {key: _value(path, folder, table, key, value, schema) for key, value in values.items()}


def _value(
    path: Path, folder: Path, table: str | None, key: str, value: Any, schema: Schema
) -> Any:
    known = schema.get(table, {})
    if key not in known:
        raise ConfigFileError(f"{path}: {_unknown(table, key, schema)}")
    spec = known[key]
    where = f"{path}: {_name(table, key)}"
    if not _has_kind(value, spec.kind):
        raise ConfigFileError(f"{where} must be {spec.kind.value}, not {toml_value(value)}")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigFileError(
            f"{where} must be one of {', '.join(spec.choices)}, not {toml_value(value)}"
        )
    low = -math.inf if spec.minimum is None else spec.minimum
    high = math.inf if spec.maximum is None else spec.maximum
    if spec.kind in (Kind.INTEGER, Kind.FLOAT) and not low <= value <= high:
        bounds = (
            f"at least {spec.minimum}"
            if spec.maximum is None
            else f"from {spec.minimum} to {spec.maximum}"
        )
        raise ConfigFileError(f"{where} must be {bounds}, not {value}")
    if spec.kind is Kind.PATH:
        return str(folder / Path(value).expanduser())
    if spec.kind is Kind.TABLES:
        return [_item(path, folder, table, key, n, item, spec) for n, item in enumerate(value, 1)]
    return value


def _item(
    path: Path, folder: Path, table: str | None, key: str, n: int, item: Any, spec: Key
) -> dict[str, Any]:
    """The ``n``-th table of an array of tables, checked against ``spec.fields``."""
    name = f"{table}.{key}" if table is not None else key
    where = f"[[{name}]] number {n}"
    fields = spec.fields or {}
    missing = [field for field in spec.required if field not in item]
    if missing:
        raise ConfigFileError(f"{path}: {where} needs {', '.join(map(repr, missing))}")
    return {
        field: _value(path, folder, where, field, value, {where: fields})
        for field, value in item.items()
    }


def _has_kind(value: Any, kind: Kind) -> bool:
    if isinstance(value, bool):  # bool is an int in Python, not in TOML
        return kind is Kind.BOOLEAN
    match kind:
        case Kind.STRING | Kind.PATH:
            return isinstance(value, str)
        case Kind.INTEGER:
            return isinstance(value, int)
        case Kind.FLOAT:
            return isinstance(value, int | float)
        case Kind.BOOLEAN:
            return False
        case Kind.STRING_LIST:
            return isinstance(value, list) and all(isinstance(item, str) for item in value)
        case Kind.TABLES:
            return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _unknown(table: str | None, key: str, schema: Schema) -> str:
    """Name the unknown key and the likeliest one meant: the same key in another table, or
    the closest key (or table) in this one."""
    homes = [other for other, keys in schema.items() if key in keys and other != table]
    if homes:
        return f"{_name(table, key)} belongs in {_table_name(homes[0])}"
    here = [*schema.get(table, {})]
    if table is None:
        here += [name for name in schema if name is not None]
    close = difflib.get_close_matches(key, here, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known here: {', '.join(here)}"
    return f"unknown key {_name(table, key)}{hint}"


def _name(table: str | None, key: str) -> str:
    if table is None:
        return repr(key)
    return f"{key!r} in {table}" if table.startswith("[[") else f"{key!r} in [{table}]"


def _table_name(table: str | None) -> str:
    return "the top level (before any [table])" if table is None else f"[{table}]"


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def read_secret(path: Path, *, key: str, settings: Path) -> str:
    """The secret in the file ``path`` that ``key`` of the file ``settings`` names: its one
    line, without the newline.

    Raises:
        ConfigFileError: the file cannot be read, is empty or holds more than one line.
    """
    where = f"{settings}: {key} = {toml_value(str(path))}"
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{where}: cannot read it: {_reason(exc)}") from exc
    for newline in _NEWLINES:
        if text.endswith(newline):
            text = text.removesuffix(newline)
            break
    if not text:
        raise ConfigFileError(f"{where}: the file is empty")
    if "\n" in text or "\r" in text:
        raise ConfigFileError(f"{where}: the file must hold the secret alone, on one line")
    return text


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One key of ``config show``: its value (``None``: not set) and where it came from."""

    key: str
    value: Any
    source: str


def render(tables: Sequence[tuple[str | None, Sequence[Line]]], header: Sequence[str]) -> str:
    """TOML text for ``tables`` (the top level first), each value commented with its source;
    a key that is not set becomes a comment, as TOML has no null."""
    out = [f"# {line}" if line else "#" for line in header]
    for table, lines in tables:
        if table is not None:
            out += ["", f"[{table}]"]
        for line in lines:
            if line.value is None:
                out.append(f"# {line.key} is not set ({line.source})")
            else:
                out.append(f"{line.key} = {toml_value(line.value)}  # {line.source}")
    return "\n".join(out) + "\n"


def toml_value(value: Any) -> str:
    """``value`` as a TOML value: a string, integer, float, boolean or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string, once DEL (which JSON leaves bare) is escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return toml_value(str(value))
