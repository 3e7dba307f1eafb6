"""Stripe's form encoding of nested parameters: `metadata[reference]=...`, `expand[]=...`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Params = Mapping[str, "ParamValue"]
ParamValue = str | int | bool | None | Mapping[str, Any] | Sequence[Any]
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def encode(params: Params) -> list[tuple[str, str]]:
    """Flatten nested parameters into form pairs; None values are left out, lists are indexed."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            pairs.append((prefix, str(value)))

    for key, value in params.items():
        walk(key, value)
    return pairs


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild nested parameters from form pairs (`a[b][0]` -> {"a": {"b": {"0": ...}}}, `a[]` -> list)."""
    result: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if match is None:
            raise ValueError(f"malformed parameter name {raw_key!r}")
        path = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])]
        node: dict[str, Any] = result
        for index, part in enumerate(path):
            last = index == len(path) - 1
            following = None if last else path[index + 1]
            if last:
                if part == "":
                    raise ValueError(f"malformed parameter name {raw_key!r}")
                node[part] = value
            elif following == "" and index + 2 == len(path):
                node.setdefault(part, []).append(value)
                break
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ValueError(f"parameter {raw_key!r} conflicts with another")
                node = child
    return result
