"""Route templates and matching with ASP.NET Core routing precedence (pure)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

# Per-segment precedence digits, as RoutePrecedence.ComputeInbound: lower wins.
LITERAL, COMPLEX, CONSTRAINED, PARAMETER, CATCH_ALL = 1, 2, 3, 4, 5

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Parameter:
    name: str
    constraints: tuple[str, ...] = ()
    optional: bool = False
    catch_all: bool = False
    default: str | None = None


Part = str | Parameter


@dataclass(frozen=True)
class Segment:
    parts: tuple[Part, ...]

    @property
    def parameter(self) -> Parameter | None:
        """The parameter when the whole segment is one parameter."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Parameter):
            return self.parts[0]
        return None

    @property
    def precedence(self) -> int:
        param = self.parameter
        if param is None:
            return LITERAL if all(isinstance(p, str) for p in self.parts) else COMPLEX
        if param.catch_all:
            return CATCH_ALL
        return CONSTRAINED if param.constraints else PARAMETER


def _split_outside_parens(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if char == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _parse_parameter(text: str) -> Parameter:
    catch_all = text.startswith("*")
    body = text.lstrip("*")
    default: str | None = None
    pieces = _split_outside_parens(body, "=")
    if len(pieces) > 1:
        body, default = pieces[0], "=".join(pieces[1:])
    optional = body.endswith("?")
    body = body.removesuffix("?")
    name, *constraints = _split_outside_parens(body, ":")
    name = name.strip()
    if not name:
        raise ValueError(f"empty route parameter name in {{{text}}}")
    return Parameter(
        name=name,
        constraints=tuple(c for c in constraints if c),
        optional=optional,
        catch_all=catch_all,
        default=default,
    )


def _parse_segment(text: str) -> Segment:
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if text.startswith("{{", i) or text.startswith("}}", i):
            literal.append(char)  # escaped brace
            i += 2
        elif char == "{":
            end = i + 1
            while end < len(text) and not (text[end] == "}" and not text.startswith("}}", end)):
                end += 2 if text.startswith("}}", end) else 1
            if end >= len(text):
                raise ValueError(f"unterminated parameter in route segment {text!r}")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_parameter(text[i + 1 : end].replace("}}", "}")))
            i = end + 1
        elif char == "}":
            raise ValueError(f"unbalanced '}}' in route segment {text!r}")
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Segment(tuple(parts))


def _split_path(path: str) -> list[str]:
    path = path.strip("/")
    return path.split("/") if path else []


@dataclass(frozen=True)
class RouteTemplate:
    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, template: str, prefix: str = "") -> RouteTemplate:
        template = template.removeprefix("~")
        full = "/".join(p for p in (prefix.strip("/"), template.strip("/")) if p)
        segments = tuple(_parse_segment(s) for s in _split_path(full))
        for segment in segments[:-1]:
            param = segment.parameter
            if param is not None and param.catch_all:
                raise ValueError(f"catch-all parameter must be the last segment: {full!r}")
        return cls(text=full, segments=segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(s.precedence for s in self.segments)

    def match(self, path: str) -> dict[str, str] | None:
        """Match a raw (still percent-encoded) URL path; returns decoded route values."""
        raw = _split_path(path)
        decoded = [unquote(s) for s in raw]
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            param = segment.parameter
            if param is not None and param.catch_all:
                rest = "/".join(decoded[index:])
                return values if _bind(values, param, rest) else None
            if index >= len(decoded):
                # Only trailing optional (or defaulted) parameters may be absent.
                if param is None or not (param.optional or param.default is not None):
                    return None
                if param.default is not None:
                    values[param.name] = param.default
                continue
            if not _match_segment(segment, decoded[index], values):
                return None
        return values if len(decoded) <= len(self.segments) else None


def _bind(values: dict[str, str], param: Parameter, value: str) -> bool:
    if value == "":
        if param.default is not None:
            values[param.name] = param.default
        # Catch-alls are implicitly optional.
        return param.catch_all or param.optional or param.default is not None
    if not all(check_constraint(c, value) for c in param.constraints):
        return False
    values[param.name] = value
    return True


def _match_segment(segment: Segment, value: str, values: dict[str, str]) -> bool:
    param = segment.parameter
    if param is not None:
        return value != "" and _bind(values, param, value)
    if all(isinstance(p, str) for p in segment.parts):
        return "".join(p for p in segment.parts if isinstance(p, str)).lower() == value.lower()
    # Complex segment such as "{file}.{ext}".
    pattern = "".join(
        f"(?P<p{i}>.+)" if isinstance(p, Parameter) else re.escape(p) for i, p in enumerate(segment.parts)
    )
    match = re.fullmatch(pattern, value, re.IGNORECASE)
    if match is None:
        return False
    bound: dict[str, str] = {}
    for i, part in enumerate(segment.parts):
        if isinstance(part, Parameter) and not _bind(bound, part, match[f"p{i}"]):
            return False
    values.update(bound)
    return True


def _number(value: str, integral: bool, bounds: tuple[int, int]) -> bool:
    try:
        if integral:
            return re.fullmatch(r"[+-]?\d+", value) is not None and (bounds[0] <= int(value) <= bounds[1])
        return math.isfinite(float(value))
    except ValueError:
        return False


def _args(constraint: str) -> list[str]:
    inner = constraint[constraint.index("(") + 1 : constraint.rindex(")")]
    return [a.strip() for a in inner.split(",")]


_SIMPLE_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": lambda v: _number(v, True, _INT32),
    "long": lambda v: _number(v, True, _INT64),
    "float": lambda v: _number(v, False, _INT64),
    "double": lambda v: _number(v, False, _INT64),
    "decimal": lambda v: _number(v, False, _INT64),
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "bool": lambda v: v.lower() in ("true", "false"),
    "required": lambda v: v != "",
}


def _valid(parse: Callable[[str], object], value: str) -> bool:
    parse(value)
    return True


def _bounded(name: str, args: list[int], value: str) -> bool:
    """The constraints with integer arguments: lengths of the value, or bounds of its number."""
    if name == "minlength":
        return len(value) >= args[0]
    if name == "maxlength":
        return len(value) <= args[0]
    if name == "length":
        low, high = (args[0], args[0]) if len(args) == 1 else (args[0], args[1])
        return low <= len(value) <= high
    if not _number(value, True, _INT64):
        return False
    number = int(value)
    if name == "min":
        return number >= args[0]
    if name == "max":
        return number <= args[0]
    return args[0] <= number <= args[-1]


def check_constraint(constraint: str, value: str) -> bool:
    """Inline route constraints of ASP.NET Core; unknown ones are accepted."""
    name = constraint.split("(", 1)[0].strip().lower()
    try:
        if name in _SIMPLE_CONSTRAINTS:
            return _SIMPLE_CONSTRAINTS[name](value)
        if name == "guid":
            return _valid(uuid.UUID, value)
        if name == "datetime":
            return _valid(datetime.fromisoformat, value)
        if name == "regex":
            inner = constraint[constraint.index("(") + 1 : constraint.rindex(")")]
            return re.search(inner, value, re.IGNORECASE) is not None
        if name in ("minlength", "maxlength", "length", "min", "max", "range"):
            return _bounded(name, [int(a) for a in _args(constraint)], value)
    except (ValueError, IndexError, re.error):
        return False
    return True


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    target: T
    route_params: dict[str, str]
    template: str


@dataclass(frozen=True)
class MethodNotAllowed:
    allowed: frozenset[str]


@dataclass(frozen=True)
class _Entry(Generic[T]):
    template: RouteTemplate
    methods: frozenset[str] | None
    target: T


class Router(Generic[T]):
    """Ordered route table; ``match`` returns a match, ``MethodNotAllowed`` or None (404)."""

    def __init__(self, prefix: str = "api") -> None:
        self.prefix = prefix
        self._entries: list[_Entry[T]] = []

    def add(self, template: str, methods: Iterable[str] | None, target: T) -> RouteTemplate:
        parsed = RouteTemplate.parse(template, self.prefix)
        allowed = None if methods is None else frozenset(m.upper() for m in methods)
        self._entries.append(_Entry(parsed, allowed or None, target))
        # Stable sort: equal precedence keeps a deterministic, case-insensitive text order.
        self._entries.sort(key=lambda e: (e.template.precedence, e.template.text.lower()))
        return parsed

    @property
    def templates(self) -> list[str]:
        return [e.template.text for e in self._entries]

    def match(self, method: str, path: str) -> RouteMatch[T] | MethodNotAllowed | None:
        method = method.upper()
        allowed: set[str] = set()
        for entry in self._entries:
            values = entry.template.match(path)
            if values is None:
                continue
            if entry.methods is None or method in entry.methods:
                return RouteMatch(entry.target, values, entry.template.text)
            allowed |= entry.methods
        return MethodNotAllowed(frozenset(allowed)) if allowed else None
