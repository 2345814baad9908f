"""The JSON form of protocol messages: the base class, and parsing untrusted payloads.

Every message is a frozen dataclass whose ``to_wire()`` gives its JSON object (None fields
left out; Python keywords renamed). :func:`parse_object` turns one untrusted payload into
a JSON object with a string ``type`` under the protocol's bounds (UTF-8, no duplicate
keys, no NaN, nesting at most :data:`MAX_DEPTH`); :class:`Fields` reads its fields with
their types checked. The catalogue (``requests``, ``events``) and the codec stand on this.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from typing import Any, ClassVar, TypeGuard

from securechat.errors import MalformedMessage
from securechat.protocol.names import NAME_RULE, normalize_name

MAX_REF = 64
MAX_TEXT = 1024  # user names at login, passwords, tokens, reasons: far above any real value
MAX_DEPTH = 16  # protocol objects nest 3 levels; the json module would recurse ~1000 deep

# Field names that are Python keywords on the wire.
_WIRE_NAMES = {"sender": "from", "peer": "with"}


_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}  # filled once per class, any thread


def _wire_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, wire name) of each field; ``dataclasses.fields()`` is slow per call."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = tuple((f.name, _WIRE_NAMES.get(f.name, f.name)) for f in dataclasses.fields(cls))
        _FIELDS[cls] = fields
    return fields


def _wire_dict(value: object) -> dict[str, Any]:
    kind = getattr(value, "TYPE", None)  # nested values (RoomInfo) have no type of their own
    out: dict[str, Any] = {} if kind is None else {"type": kind}
    for name, wire_name in _wire_fields(type(value)):
        item = getattr(value, name)
        if item is None:
            continue
        if isinstance(item, tuple):
            item = [_wire_dict(x) if dataclasses.is_dataclass(x) else x for x in item]
        elif dataclasses.is_dataclass(item):  # one nested value (a ticket's file)
            item = _wire_dict(item)
        out[wire_name] = item
    return out


def wire_object(value: object) -> dict[str, Any]:
    """The JSON object of a value nested in a message (an item of a list), as sent."""
    return _wire_dict(value)


class WireMessage:
    """The base of every message: its wire ``TYPE`` and its JSON object."""

    TYPE: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        """The JSON object for this message (None fields are left out)."""
        return _wire_dict(self)


dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedMessage("duplicate key in JSON object")
    return obj


def _reject_constant(name: str) -> None:
    raise MalformedMessage(f"{name} is not valid JSON")


# A JSON string, or an unterminated one up to the end: linear time on any input.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
# Byte -> 1 + change in nesting depth: "[" and "{" open, "]" and "}" close.
_DEPTH_TABLE = bytes(2 if c in b"[{" else 0 if c in b"]}" else 1 for c in range(256))
_SURROGATE = re.compile("[\ud800-\udfff]")


def _nesting_depth(payload: bytes) -> int:
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the number of openers
    unquoted = _JSON_STRING.sub(b"", payload).translate(_DEPTH_TABLE)
    return max(itertools.accumulate(step - 1 for step in unquoted), default=0)


def is_text(value: object) -> TypeGuard[str]:
    """A str that UTF-8 can carry (JSON's \\ud800 escapes can produce lone surrogates)."""
    return isinstance(value, str) and not _SURROGATE.search(value)


def parse_object(payload: bytes) -> dict[str, Any]:
    """Parse a payload into a JSON object that has a string ``type``.

    Raises:
        MalformedMessage: not UTF-8, not JSON, too deeply nested, not an object, no type.
    """
    if _nesting_depth(payload) > MAX_DEPTH:
        raise MalformedMessage(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(
            payload.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError as exc:
        raise MalformedMessage("frame is not valid UTF-8") from exc
    except RecursionError as exc:
        raise MalformedMessage("JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, and int() beyond sys.get_int_max_str_digits()
        raise MalformedMessage(f"frame is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MalformedMessage("frame must hold a JSON object")
    if not is_text(obj.get("type")):
        ref = obj.get("ref")
        valid_ref = ref if is_text(ref) and len(ref) <= MAX_REF else None
        raise MalformedMessage("message needs a string field 'type'", ref=valid_ref)
    return obj


def request_ref(payload: bytes) -> str | None:
    """The valid ``ref`` of a request payload, if it has one, whatever else is wrong in it.

    For answering a frame that is refused before it is decoded (rate limiting).
    """
    try:
        ref = parse_object(payload).get("ref")
    except MalformedMessage as exc:
        return exc.ref
    return ref if is_text(ref) and len(ref) <= MAX_REF else None


class Fields:
    """Typed access to one JSON object's fields, raising MalformedMessage on misuse."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self._obj = obj
        ref = obj.get("ref")
        self.ref: str | None = ref if is_text(ref) and len(ref) <= MAX_REF else None
        if "ref" in obj and self.ref is None:
            raise MalformedMessage(f"'ref' must be a string of at most {MAX_REF} characters")

    def fail(self, text: str) -> MalformedMessage:
        return MalformedMessage(f"{self._obj['type']}: {text}", ref=self.ref)

    def _get(self, key: str, kind: type | tuple[type, ...], label: str) -> Any:
        value = self._obj.get(key)
        if value is None:
            return None
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise self.fail(f"'{key}' must be {label}")
        return value

    def _required(self, key: str, value: Any) -> Any:
        if value is None:
            raise self.fail(f"'{key}' is required")
        return value

    def opt_text(self, key: str, max_len: int = MAX_TEXT) -> str | None:
        value: str | None = self._get(key, str, "a string")
        if value is not None:
            if len(value) > max_len:
                raise self.fail(f"'{key}' is longer than {max_len} characters")
            if not is_text(value):
                raise self.fail(f"'{key}' holds a lone UTF-16 surrogate")
        return value

    def text(self, key: str, max_len: int = MAX_TEXT) -> str:
        result: str = self._required(key, self.opt_text(key, max_len))
        return result

    def opt_name(self, key: str) -> str | None:
        raw = self.opt_text(key, max_len=64)
        if raw is None:
            return None
        name = normalize_name(raw)
        if name is None:
            raise self.fail(f"'{key}' must be {NAME_RULE}")
        return name

    def name(self, key: str) -> str:
        result: str = self._required(key, self.opt_name(key))
        return result

    def opt_int(self, key: str, minimum: int = 0) -> int | None:
        value: int | None = self._get(key, int, "an integer")
        if value is not None and not minimum <= value < 2**63:
            raise self.fail(f"'{key}' must be an integer from {minimum} to 2^63-1")
        return value

    def int(self, key: str, minimum: int = 0) -> int:
        result: int = self._required(key, self.opt_int(key, minimum))
        return result

    def opt_number(self, key: str) -> float | None:
        value: float | int | None = self._get(key, (int, float), "a number")
        return None if value is None else float(value)

    def opt_boolean(self, key: str) -> bool | None:
        value: bool | None = self._get(key, bool, "true or false")
        return value

    def boolean(self, key: str) -> bool:
        result: bool = self._required(key, self.opt_boolean(key))
        return result

    def names(self, key: str) -> tuple[str, ...]:
        value = self._required(key, self._get(key, list, "a list"))
        if not all(isinstance(item, str) for item in value):
            raise self.fail(f"'{key}' must be a list of strings")
        return tuple(value)

    def opt_names(self, key: str) -> tuple[str, ...] | None:
        """A list of strings, if present (not normalized: ids, not user names)."""
        return None if self._obj.get(key) is None else self.names(key)

    def opt_object(self, key: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._get(key, dict, "an object")
        return value

    def opt_objects(self, key: str) -> list[dict[str, Any]] | None:
        value = self._get(key, list, "a list")
        if value is not None and not all(isinstance(item, dict) for item in value):
            raise self.fail(f"'{key}' must be a list of objects")
        return None if value is None else list(value)

    def objects(self, key: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._required(key, self.opt_objects(key))
        return result

    def one_of(self, first: str | None, second: str | None, keys: str) -> None:
        if (first is None) == (second is None):
            raise self.fail(f"exactly one of {keys} is required")
