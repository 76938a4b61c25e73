"""Checks of the Azure deployment in infra/: the Bicep parses, checkov passes, settings match the code.

Shared helpers: the parsed Bicep files (pycep-parser, the parser checkov itself uses) and a small
evaluator for the constant parts of the expressions in them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse(relative: str) -> dict[str, Any]:
    """The pycep JSON of infra/<relative>."""
    # pycep types each kind of node; the tests walk the tree as plain JSON.
    return cast(dict[str, Any], BicepParser().parse(file_path=INFRA / relative))


def resources(relative: str, type_: str | None = None) -> dict[str, dict[str, Any]]:
    """Declared resources of one file (name -> pycep entry), optionally of one type."""
    found = parse(relative).get("resources", {})
    return {name: r for name, r in found.items() if type_ is None or r["type"] == type_}


def config(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body, looking through a condition or a loop."""
    body: dict[str, Any] = resource["config"]
    while "config" in body and ("condition" in body or "loop_type" in body):
        body = body["config"]
    return body


class Unresolved(str):
    """A value only known at deployment (a resource property or module output)."""


def evaluate(value: Any, relative: str = "main.bicep") -> Any:
    """The value of a Bicep expression where it is constant: literals, parameter defaults, variables,
    `${...}` of those, and string(); anything known only at deployment becomes an Unresolved string
    naming the expression. pycep writes identifiers and string literals alike as strings: a string
    equal to a parameter or variable name is taken as the reference."""
    tree = parse(relative)
    params, variables = tree.get("parameters", {}), tree.get("variables", {})
    if isinstance(value, str):
        if value in params and params[value]["default"] is not None:
            return evaluate(params[value]["default"], relative)
        if value in variables:
            return evaluate(variables[value]["value"], relative)
        if "${" in value:
            return _interpolate(value, relative)
        return value
    if isinstance(value, list):
        return [evaluate(v, relative) for v in value]
    if isinstance(value, dict):
        if "function" in value and value["function"]["type"] == "string":
            inner = evaluate(value["function"]["parameters"]["value_to_convert"], relative)
            return inner if isinstance(inner, Unresolved) else str(inner)
        if "function" in value or "operator" in value:
            return Unresolved(f"<{_describe(value)}>")
        return {k: evaluate(v, relative) for k, v in value.items()}
    return value


def _interpolate(text: str, relative: str) -> str:
    out, rest = [], text
    unresolved = False
    while "${" in rest:
        before, _, after = rest.partition("${")
        expression, _, rest = after.partition("}")
        value = evaluate(expression, relative)
        if isinstance(value, Unresolved) or value == expression:
            unresolved = True
            value = f"<{expression}>"
        out += [before, str(value)]
    out.append(rest)
    joined = "".join(out)
    return Unresolved(joined) if unresolved else joined


def _describe(value: Any) -> str:
    if isinstance(value, dict) and "operator" in value:
        operands = value["operator"].get("operands", {})
        if value["operator"]["type"] == "property_accessor":
            return f"{_describe(operands.get('operand_1'))}.{_describe(operands.get('operand_2'))}"
        return str(value["operator"]["type"])
    if isinstance(value, dict) and "function" in value:
        return f"{value['function']['type']}(...)"
    return str(value)


def app_settings() -> dict[str, Any]:
    """The app settings main.bicep gives the function app: `var appSettings`, evaluated."""
    raw = parse("main.bicep")["variables"]["appSettings"]["value"]
    return {name: evaluate(value) for name, value in raw.items()}
