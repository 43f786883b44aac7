"""Settings as typed values at every depth: one ``from_mapping`` turns plain data into them.

A section of settings is a frozen, keyword-only dataclass. ``from_mapping(Kind, data, "llm")``
checks every key against the dataclass's fields and every value against the field's type, then
builds it; ``__post_init__`` checks the rest (ranges, combinations) with ``check()``. Whatever
is wrong comes out as one ``SettingError`` line that names the dotted key::

    llm.rmp: unknown setting; did you mean rpm?
    strategy_options.max_in_flight: invalid value 0 (must be >= 1)
    retry.initial: invalid value 'soon' (must be a number)

Types understood: ``int``, ``float`` (an int is accepted), ``bool``, ``str``, ``X | None``,
``Literal[...]``, ``tuple[str, ...]`` (a single string is accepted), mappings, and nested
settings dataclasses (recursively, with their dotted path).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from docmill.errors import ConfigError

T = TypeVar("T")

_NUMBER_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


class SettingError(ConfigError):
    """A setting that is unknown or invalid; ``key`` is its dotted path (``llm.rpm``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")

    def under(self, path: str) -> SettingError:
        """The same error, one section deeper (``rpm`` → ``llm.rpm``)."""
        return SettingError(f"{path}.{self.key}" if path else self.key, self.problem)


def invalid(key: str, value: Any, rule: str) -> SettingError:
    """``key: invalid value V (rule)``."""
    return SettingError(key, f"invalid value {value!r} ({rule})")


def check(ok: bool, key: str, value: Any, rule: str) -> None:
    """Raise ``invalid(key, value, rule)`` unless ``ok``: the one-liner ``__post_init__`` uses."""
    if not ok:
        raise invalid(key, value, rule)


def unknown(key: str, known: typing.Iterable[str]) -> SettingError:
    """``key: unknown setting; did you mean X?`` (or the list of known keys when none is close)."""
    names = sorted(known)
    leaf = key.rpartition(".")[2]
    close = difflib.get_close_matches(leaf, names, n=1, cutoff=0.6)
    if close:
        return SettingError(key, f"unknown setting; did you mean {close[0]}?")
    return SettingError(key, f"unknown setting (known: {', '.join(names) or 'none'})")


def field_names(kind: type[Any], hidden: typing.Collection[str] = ()) -> list[str]:
    """The settings a section takes: its init fields, less ``hidden`` ones and those named ``_…``."""
    fields = dataclasses.fields(kind)
    return [f.name for f in fields if f.init and not f.name.startswith("_") and f.name not in hidden]


def from_mapping(kind: type[T], data: Any, path: str = "", *, hidden: typing.Collection[str] = ()) -> T:
    """Build the settings dataclass ``kind`` from plain data; ``SettingError`` names what is wrong.

    ``hidden`` fields are not settings (a ``RetryPolicy``'s ``retry_on`` holds classes): they are
    refused as unknown keys. A plain ``ConfigError`` raised by ``kind`` is prefixed with ``path``.
    """
    if isinstance(data, kind):
        return data
    if not isinstance(data, Mapping):
        raise SettingError(path or kind.__name__, f"expected a mapping of settings, got {data!r}")
    names = field_names(kind, hidden)
    for key in data:
        if key not in names:
            raise unknown(_join(path, str(key)), names)
    hints = typing.get_type_hints(kind)
    values = {key: coerce(hints.get(key, Any), value, _join(path, key)) for key, value in data.items()}
    return _build(kind, values, path)


def hint_of(kind: type[Any], dotted: str) -> Any:
    """The type of the setting ``dotted`` (``llm.rpm``) in the section ``kind``; ``unknown`` if none."""
    head, _, rest = dotted.partition(".")
    if head not in field_names(kind):
        raise unknown(dotted, field_names(kind))
    hint = typing.get_type_hints(kind)[head]
    if not rest:
        return hint
    if not (dataclasses.is_dataclass(hint) and isinstance(hint, type)):
        raise SettingError(dotted, f"{head} is not a section of settings")
    try:
        return hint_of(hint, rest)
    except SettingError as exc:
        raise exc.under(head) from None


def _build(kind: type[T], values: dict[str, Any], path: str) -> T:
    try:
        return kind(**values)
    except SettingError as exc:
        raise exc.under(path) from None
    except ConfigError as exc:
        if not path or str(exc).startswith(f"{path}."):
            raise
        raise SettingError(path, str(exc)) from None


def coerce(hint: Any, value: Any, key: str) -> Any:
    """``value`` checked (and lightly converted) against ``hint``; ``SettingError`` if it does not fit."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(hint), value, key)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        check(value in choices, key, value, "one of " + ", ".join(map(str, choices)))
        return value
    if origin is tuple:
        return _strings(value, key)
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        check(isinstance(value, Mapping), key, value, "must be a mapping")
        return dict(value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_mapping(hint, value, key)
    return _scalar(hint, value, key)


def _scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is bool:
        check(isinstance(value, bool), key, value, "must be true or false")
    elif hint is int:
        check(isinstance(value, int) and not isinstance(value, bool), key, value, "must be an integer")
    elif hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        check(number, key, value, "must be a number")
        return float(value)
    elif hint is str:
        check(isinstance(value, str), key, value, "must be a string")
    return value


def _union(options: tuple[Any, ...], value: Any, key: str) -> Any:
    if value is None and type(None) in options:
        return None
    real = [o for o in options if o is not type(None)]
    first: SettingError | None = None
    for option in real:
        try:
            return coerce(option, value, key)
        except SettingError as exc:
            first = first or exc
    assert first is not None
    if len(real) == 1 or all(o in _NUMBER_WORDS for o in real):
        raise first
    raise invalid(key, value, "not a valid value for this setting")


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    check(ok, key, value, "must be a string or a list of strings")
    return tuple(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


__all__ = ["SettingError", "check", "coerce", "field_names", "from_mapping", "hint_of", "invalid", "unknown"]
