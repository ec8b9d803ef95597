"""Prompt template rendering (inventory §3.14): `{{VAR}}` and `{{#if VAR}}...{{else}}...{{/if}}`.

Pure and strict: an unclosed or stray block is an error a person can fix, never a
silently half-rendered prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

TOKEN = re.compile(r"\{\{\s*(#if\s+[A-Za-z_][\w.]*|else|/if|[A-Za-z_][\w.]*)\s*\}\}")


class TemplateError(ValueError):
    pass


@dataclass
class _Block:
    condition: str | None  # None for the root
    then: list[_Node] = field(default_factory=list)
    otherwise: list[_Node] | None = None
    offset: int = 0


_Node = str | tuple[str] | _Block  # literal text | (variable,) | conditional block


def parse(template: str) -> list[_Node]:
    root = _Block(condition=None)
    stack = [root]
    position = 0
    for match in TOKEN.finditer(template):
        _append(stack[-1], template[position : match.start()])
        position = match.end()
        token = match.group(1)
        if token.startswith("#if"):
            block = _Block(condition=token[3:].strip(), offset=match.start())
            _append(stack[-1], block)
            stack.append(block)
        elif token == "else":
            if len(stack) == 1 or stack[-1].otherwise is not None:
                raise TemplateError(f"{{{{else}}}} without an open {{{{#if}}}} at {match.start()}")
            stack[-1].otherwise = []
        elif token == "/if":
            if len(stack) == 1:
                raise TemplateError(f"{{{{/if}}}} without an open {{{{#if}}}} at {match.start()}")
            stack.pop()
        else:
            _append(stack[-1], (token,))
    _append(stack[-1], template[position:])
    if len(stack) > 1:
        raise TemplateError(
            f"Unclosed {{{{#if {stack[-1].condition}}}}} at character {stack[-1].offset}"
        )
    return root.then


def _append(block: _Block, node: _Node) -> None:
    if node == "":
        return
    target = block.otherwise if block.otherwise is not None else block.then
    target.append(node)


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off")
    return bool(value)


def _lookup(variables: Mapping[str, object], name: str) -> object:
    value: object = variables
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


# How a variable's value is written into the output: (name, text of the value) -> output.
Substitute = Callable[[str, str], str]


def as_text(value: object) -> str:
    """The text a variable's value renders as."""
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _verbatim(name: str, text: str) -> str:
    return text


def _render(
    nodes: list[_Node], variables: Mapping[str, object], out: list[str], substitute: Substitute
) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, tuple):
            value = _lookup(variables, node[0])
            out.append("" if value is None else substitute(node[0], as_text(value)))
        else:
            chosen = (
                node.then if _truthy(_lookup(variables, node.condition or "")) else node.otherwise
            )
            _render(chosen or [], variables, out, substitute)


def render(
    template: str, variables: Mapping[str, object], *, substitute: Substitute = _verbatim
) -> str:
    """Render; unknown variables become empty strings (the reference's behaviour).

    `substitute` decides what a variable becomes in the output; by default its text.
    """
    out: list[str] = []
    _render(parse(template), variables, out, substitute)
    return "".join(out)


def validate(template: str) -> None:
    """Raise TemplateError when the template's blocks do not balance."""
    parse(template)


def variables_used(template: str) -> set[str]:
    return {
        m.group(1) if not m.group(1).startswith("#if") else m.group(1)[3:].strip()
        for m in TOKEN.finditer(template)
        if m.group(1) not in ("else", "/if")
    }
