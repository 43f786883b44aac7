"""docmill.settings: every key checked, every value typed, errors name the dotted key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from docmill.errors import ConfigError
from docmill.settings import SettingError, check, from_mapping


@dataclass(frozen=True, slots=True, kw_only=True)
class Inner:
    rpm: float | None = None
    mode: Literal["a", "b"] = "a"

    def __post_init__(self) -> None:
        check(self.rpm is None or self.rpm > 0, "rpm", self.rpm, "must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outer:
    workers: int = 1
    name: str = "x"
    flag: bool = False
    globs: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)


def error(data: object) -> str:
    with pytest.raises(SettingError) as info:
        from_mapping(Outer, data, "top")
    assert isinstance(info.value, ConfigError) and info.value.exit_code == 2
    return str(info.value)


def test_values_are_built_and_converted() -> None:
    built = from_mapping(Outer, {"workers": 3, "globs": "*.pdf", "inner": {"rpm": 60}}, "top")
    assert built == Outer(workers=3, globs=("*.pdf",), inner=Inner(rpm=60.0))
    assert isinstance(built.inner.rpm, float)


def test_unknown_keys_name_the_dotted_path_and_the_nearest_key() -> None:
    assert error({"inner": {"rmp": 5}}) == "top.inner.rmp: unknown setting; did you mean rpm?"
    assert error({"wrokers": 5}) == "top.wrokers: unknown setting; did you mean workers?"
    assert "known: flag, globs, inner, name, workers" in error({"zzz": 1})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workers": "2"}, "top.workers: invalid value '2' (must be an integer)"),
        ({"workers": True}, "top.workers: invalid value True (must be an integer)"),
        ({"flag": "yes"}, "top.flag: invalid value 'yes' (must be true or false)"),
        ({"globs": [1]}, "top.globs: invalid value [1] (must be a string or a list of strings)"),
        ({"inner": {"rpm": 0}}, "top.inner.rpm: invalid value 0.0 (must be > 0)"),
        ({"inner": {"rpm": "fast"}}, "top.inner.rpm: invalid value 'fast' (must be a number)"),
        ({"inner": {"mode": "c"}}, "top.inner.mode: invalid value 'c' (one of a, b)"),
        ({"inner": 5}, "top.inner: expected a mapping of settings, got 5"),
        ([1, 2], "top: expected a mapping of settings, got [1, 2]"),
    ],
)
def test_invalid_values_are_refused_in_one_line(data: object, message: str) -> None:
    assert error(data) == message


def test_hint_of_walks_the_dotted_path() -> None:
    from docmill.settings import hint_of

    assert hint_of(Outer, "workers") is int
    assert hint_of(Outer, "inner.rpm") == float | None
    with pytest.raises(SettingError, match=r"^inner.rmp: unknown setting; did you mean rpm\?$"):
        hint_of(Outer, "inner.rmp")
    with pytest.raises(SettingError, match="name is not a section"):
        hint_of(Outer, "name.x")


def test_a_hidden_field_is_no_setting() -> None:
    with pytest.raises(SettingError, match=r"^top.globs: unknown setting"):
        from_mapping(Outer, {"globs": "x"}, "top", hidden=("globs",))


def test_a_plain_config_error_of_a_section_names_the_section() -> None:
    @dataclass(frozen=True)
    class Legacy:
        size: int = 1

        def __post_init__(self) -> None:
            if self.size < 1:
                raise ConfigError(f"size must be >= 1, got {self.size}")

    with pytest.raises(SettingError, match=r"^legacy: size must be >= 1, got 0$"):
        from_mapping(Legacy, {"size": 0}, "legacy")
