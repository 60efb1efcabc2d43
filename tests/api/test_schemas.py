"""The wire's ``SearchSettings`` and the core's ``RRSettings`` agree field by field.

Names: every core setting can be set on the wire, except those in ``NOT_ON_THE_WIRE`` (each with
its reason). Types: the same kind (bool, int, float, or a literal). Literals: the same values, in
the same order, as the core's constants (``METHODS``, ``ORDERS``, ...). Bounds: every value the
wire accepts at its edges the core accepts too, and where the core states a bound (it refuses
values far out on that side) the wire states the same one. Each check is a function returning
what disagrees, so the controls below show it catches a disagreement. A core setting that may be
``None`` ("no limit", listed in ``NULLABLE``) takes the word ``"none"`` on the wire instead
(``null`` there is "the problem's default"); the checks compare the rest of its type.
"""

from __future__ import annotations

import dataclasses
import math
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import annotated_types as at
import pytest
from pydantic import Field

from ridgerider.core import settings as core
from ridgerider.core.settings import RRSettings
from ridgerider.schemas import SearchSettings
from ridgerider.schemas.settings import NO_LIMIT, NULLABLE

NOT_ON_THE_WIRE = {
    "device": "where branches run is each worker's choice (`ridgerider worker --device`), "
    "not a job's",
}
CHOICES: dict[str, tuple[str, ...]] = {
    "method": core.METHODS,
    "order": core.ORDERS,
    "approx_update": core.APPROX_UPDATES,
    "update": core.UPDATES,
    "ridge_rule": core.RIDGE_RULES,
    "signs": core.SIGNS,
    "step_rule": core.STEP_RULES,
}
"""The core's constant of each literal setting."""
TOGETHER = {"alpha_min": ("alpha", max), "alpha": ("alpha_min", min)}
"""The core wants ``alpha_min <= alpha`` (a 422 naming ``alpha_min`` otherwise): a probe of one
moves the other with it, so only each one's own bounds are probed."""
FAR = {int: 10**18, float: 1e300}
"""A value far beyond any bound, to learn whether the core states one on that side."""


def core_types(core_cls: type = RRSettings) -> dict[str, Any]:
    """Each core setting's type."""
    hints = get_type_hints(core_cls)
    out = {f.name: hints[f.name] for f in dataclasses.fields(core_cls)}
    for name in NULLABLE:
        (out[name],) = [a for a in get_args(out[name]) if a is not type(None)]
    return out


def _without_no_limit(name: str, args: list[Any]) -> list[Any]:
    """A nullable setting's wire type without ``Literal["none"]``, its ``Annotated`` unwrapped."""
    if name not in NULLABLE:
        return args
    assert Literal[NO_LIMIT] in args, f"{name}: {NO_LIMIT!r} is not accepted on the wire"
    rest = [a for a in args if a != Literal[NO_LIMIT]]
    return [get_args(a)[0] if get_origin(a) is Annotated else a for a in rest]


def wire_types(wire_cls: type[SearchSettings] = SearchSettings) -> dict[str, Any]:
    """Each wire setting's type without its ``| None`` (left out = the problem's default)."""
    out = {}
    for name, field in wire_cls.model_fields.items():
        ann = field.annotation
        if get_origin(ann) in (Union, types.UnionType):
            args = [a for a in get_args(ann) if a is not type(None)]
            args = _without_no_limit(name, args)
            assert len(args) == 1, f"{name}: {ann}"
            ann = args[0]
        out[name] = ann
    return out


def name_problems(core_cls: type = RRSettings, wire_cls: type = SearchSettings) -> list[str]:
    """Core settings missing on the wire (and not excused), and wire settings the core lacks."""
    ours, wire = set(core_types(core_cls)), set(wire_types(wire_cls))
    out = [f"{n}: not on the wire" for n in sorted(ours - wire - set(NOT_ON_THE_WIRE))]
    out += [f"{n}: not a core setting" for n in sorted(wire - ours)]
    out += [f"{n}: excused but on the wire" for n in sorted(set(NOT_ON_THE_WIRE) & wire)]
    return out


def _kind(ann: Any) -> Any:
    return Literal if get_origin(ann) is Literal else ann


def type_problems(wire_cls: type[SearchSettings] = SearchSettings) -> list[str]:
    """Settings whose kind differs, and literals whose values differ from the core's."""
    ours, wire = core_types(), wire_types(wire_cls)
    out = []
    for name, ann in wire.items():
        if _kind(ann) is not _kind(ours[name]):
            out.append(f"{name}: {ann} on the wire, {ours[name]} in the core")
        elif _kind(ann) is Literal:
            want = CHOICES.get(name)
            if want is None:
                out.append(f"{name}: a literal without its core constant in CHOICES")
            elif not get_args(ann) == get_args(ours[name]) == want:
                out.append(f"{name}: {get_args(ann)} on the wire, {want} in the core")
    return out


def _metadata(field: Any) -> list[Any]:
    """A field's constraints, also those of an ``Annotated`` member of its union."""
    found = list(field.metadata)
    for arg in get_args(field.annotation):
        if get_origin(arg) is Annotated:
            for extra in get_args(arg)[1:]:
                found += getattr(extra, "metadata", [])
    return found


def _bounds(field: Any) -> tuple[Any, bool, Any, bool]:
    """``(low, low included, high, high included)``; ``None`` where unbounded."""
    low = high = None
    low_in = high_in = True
    for m in _metadata(field):
        if isinstance(m, at.Ge):
            low = m.ge
        elif isinstance(m, at.Gt):
            low, low_in = m.gt, False
        elif isinstance(m, at.Le):
            high = m.le
        elif isinstance(m, at.Lt):
            high, high_in = m.lt, False
    return low, low_in, high, high_in


def _step(kind: type, value: Any, up: bool) -> Any:
    """The next value of ``kind`` after ``value``, upwards or downwards."""
    if kind is int:
        return value + (1 if up else -1)
    return math.nextafter(float(value), math.inf if up else -math.inf)


def core_accepts(name: str, value: Any) -> bool:
    """Whether ``RRSettings`` takes ``value`` for ``name`` (the other settings at defaults)."""
    changes = {name: value}
    if name in TOGETHER:
        partner, pick = TOGETHER[name]
        changes[partner] = pick(value, getattr(RRSettings(), partner))
    try:
        RRSettings(**changes)
    except ValueError:
        return False
    return True


def bound_problems(wire_cls: type[SearchSettings] = SearchSettings) -> list[str]:
    """Bounds where the wire lets through what the core refuses, or differs from the core's."""
    out = []
    for name, kind in wire_types(wire_cls).items():
        if kind not in (int, float):
            continue
        low, low_in, high, high_in = _bounds(wire_cls.model_fields[name])
        for side, edge, included, up in (
            ("low", low, low_in, True),
            ("high", high, high_in, False),
        ):
            far = FAR[kind] * (1 if not up else -1)
            states = not core_accepts(name, far)
            if edge is None:
                if states:
                    out.append(f"{name}: the core bounds the {side} side, the wire does not")
                continue
            inside = edge if included else _step(kind, edge, up)
            outside = _step(kind, edge, not up) if included else edge
            if not core_accepts(name, inside):
                out.append(f"{name}: the wire accepts {inside!r}, the core refuses it")
            if states and core_accepts(name, outside):
                out.append(f"{name}: the wire refuses {outside!r}, the core accepts it")
    return out


def test_every_core_setting_is_on_the_wire_or_excused() -> None:
    assert name_problems() == []
    assert set(NOT_ON_THE_WIRE) <= set(core_types()), "an excuse for a setting that is gone"


def test_kinds_and_literal_values_agree_with_the_core_constants() -> None:
    assert type_problems() == []
    literals = {n for n, a in wire_types().items() if get_origin(a) is Literal}
    assert literals == set(CHOICES)


def test_bounds_agree_where_both_state_them() -> None:
    assert bound_problems() == []


def test_the_checked_bounds_include_the_documented_ones() -> None:
    """n_ridges is in [1, 4096] on both sides, and the probes see the core's bounds."""
    low, low_in, high, high_in = _bounds(SearchSettings.model_fields["n_ridges"])
    assert (low, low_in, high, high_in) == (1, True, 4096, True)
    assert core_accepts("n_ridges", 4096) and not core_accepts("n_ridges", 4097)
    assert not core_accepts("n_ridges", 0)


def test_no_limit_is_none_in_the_core_and_a_word_on_the_wire() -> None:
    """``"none"`` on the wire is the core's ``None``; ``null`` (left out) is the default."""
    for name in NULLABLE:
        assert core_accepts(name, None)
        assert SearchSettings(**{name: NO_LIMIT}).given() == {name: None}
        assert SearchSettings(**{name: None}).given() == {}
    assert _bounds(SearchSettings.model_fields["max_depth"]) == (0, True, 1024, True)
    assert not core_accepts("max_depth", -1)


@dataclasses.dataclass(frozen=True)
class _CoreWithNewSetting(RRSettings):
    new_setting: int = 1


class _WireWithWrongBound(SearchSettings):
    n_ridges: int | None = Field(None, ge=1, le=5000)


class _WireWithWrongChoices(SearchSettings):
    order: Literal["bfs", "dfs"] | None = None


class _WireWithStrayField(SearchSettings):
    device: str | None = None


@pytest.mark.parametrize(
    ("check", "want"),
    [
        (lambda: name_problems(core_cls=_CoreWithNewSetting), "new_setting: not on the wire"),
        (lambda: name_problems(wire_cls=_WireWithStrayField), "device: excused but on the wire"),
        (lambda: type_problems(_WireWithWrongChoices), "order: ('bfs', 'dfs') on the wire"),
        (lambda: bound_problems(_WireWithWrongBound), "n_ridges: the wire accepts 5000"),
    ],
)
def test_controls_a_disagreement_is_reported(check: Any, want: str) -> None:
    """Control: a core setting added alone, or a wire setting that drifts, is caught."""
    problems = check()
    assert any(p.startswith(want) for p in problems), problems


def test_accelerator_text_is_the_enum() -> None:
    from typing import get_args

    from ridgerider.schemas.common import AcceleratorText
    from ridgerider.schemas.enums import Accelerator

    (literal, _check) = get_args(AcceleratorText)
    assert set(get_args(literal)) == {a.value for a in Accelerator}
