"""One walk over the contract's types for the generated JavaScript files: ``web/wire.js`` (JSDoc typedefs,
:mod:`wire.jsdoc`) and ``web/wire.d.ts`` (TypeScript declarations, :mod:`wire.tsdecl`) declare the same shapes,
message unions and wording tables in the same order, each in its own syntax, so a type added in Python reaches both
the same way. An :class:`Emitter` is one syntax; :func:`render` is the walk.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, get_args, get_origin

from . import messages, view

#: The wording tables pages read (wire.view), exported by wire.js.
TABLES = ("ACTION_TEXT", "ENGINE_TEXT", "NOTIFY_TEXT", "ELEMENT_TEXT")

_SCALARS = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def js_type(annotation: Any) -> str:
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return annotation.__name__
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        return "(" + "|".join(js_type(a) for a in args) + ")"
    if origin is typing.Literal:
        return "(" + "|".join(json.dumps(a) for a in args) + ")"
    if origin is tuple:
        return f"Array<{js_type(args[0])}>"
    raise TypeError(f"no JavaScript type for {annotation!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """One type as the generated files declare it."""

    name: str
    doc: str | None  # the docstring's first line
    tag: str | None  # a message's ``type``
    fields: list[tuple[str, str]]  # (name, JavaScript type)


def shape_of(cls: type) -> Shape:
    hints = typing.get_type_hints(cls, vars(view) | vars(messages))
    doc = (cls.__doc__ or "").strip().splitlines()
    tag = getattr(cls, "type", None)
    js_fields: dict[str, str] | None = getattr(cls, "js_fields", None)
    if js_fields is not None:  # fields only JavaScript can hold (File objects) replace the Python ones
        fields = list(js_fields.items())
    else:
        fields = [(f.name, js_type(hints[f.name])) for f in dataclasses.fields(cls)]
    return Shape(
        cls.__name__,
        doc[0] if doc and not doc[0].startswith(cls.__name__ + "(") else None,
        tag if isinstance(tag, str) else None,
        fields,
    )


def shapes() -> list[Shape]:
    """The view model and every message, in the order both files declare them."""
    return [shape_of(c) for c in (view.UploadView, view.Summary, *messages.WORKER_MESSAGES, *messages.PAGE_MESSAGES)]


def message_unions() -> dict[str, list[str]]:
    """Each direction's messages: the union's name and its members' type names."""
    return {
        "WorkerMessage": [c.__name__ for c in messages.WORKER_MESSAGES],
        "PageMessage": [c.__name__ for c in messages.PAGE_MESSAGES],
    }


class Emitter(Protocol):
    """One syntax: the lines that open the file, declare a shape, the message unions and a table, and close it."""

    header: Sequence[str]
    footer: Sequence[str]

    def declare(self, shape: Shape) -> list[str]: ...

    def unions(self, unions: Mapping[str, Sequence[str]]) -> list[str]: ...

    def table(self, name: str, table: Mapping[str, str]) -> list[str]: ...


def render(emitter: Emitter) -> str:
    """The file: header, every shape, the message unions, the wording tables, footer."""
    out = [*emitter.header, ""]
    for shape in shapes():
        out += [*emitter.declare(shape), ""]
    out += emitter.unions(message_unions())
    for name in TABLES:
        out += emitter.table(name, getattr(view, name))
    return "\n".join([*out, *emitter.footer])
