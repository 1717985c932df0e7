"""New-run forms made from the API's own request models: one field per setting, the model's bounds and
choices, filled from a run to start again. The API validates what is sent (`novalidate` in the page), so a
form shows the API's messages, field by field."""

from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from models.catalog import KINDS, Catalog

LEFT_OUT = {"cost", "webhook", "webhook_events", "rerun_of", "references", "branch"}  # set elsewhere, or by the API
LONG = {"prompt", "topic"}


@dataclass
class Field:
    name: str  # dotted, as the API names it in a problem (after `body.`)
    label: str
    kind: Literal["text", "textarea", "integer", "number", "boolean", "select", "list"]
    value: Any = None
    required: bool = False
    choices: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    shown: dict[str, str] = field(default_factory=dict)  # a choice's words, where they are not the choice

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")


@dataclass
class Group:
    name: str
    label: str
    fields: list[Field | Group]


def label_of(name: str) -> str:
    words = name.split("_")
    unit = {"usd": " (USD)", "s": " (s)"}.get(words[-1], "")
    text = " ".join(words[:-1] if unit else words).capitalize()
    return text.replace("Llm", "LLM") + unit


def _choices(annotation: Any) -> list[str]:
    values: list[str] = []
    for arg in get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else [annotation]:
        if get_origin(arg) is Literal:
            values += [str(a) for a in get_args(arg)]
        elif isinstance(arg, type) and issubclass(arg, enum.Enum):
            values += [str(m.value) for m in arg]
    return values


def _bare(annotation: Any) -> Any:
    """`X | None` → X."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge | annotated_types.Gt):
            low = float(getattr(item, "ge", getattr(item, "gt", 0)))
        if isinstance(item, annotated_types.Le | annotated_types.Lt):
            high = float(getattr(item, "le", getattr(item, "lt", 0)))
    return low, high


def fields_of(model: type[BaseModel], values: dict[str, Any], prefix: str = "") -> list[Field | Group]:
    """The form of a request model (a pipeline's `PipelineSpec.request`), filled with `values`."""
    found: list[Field | Group] = []
    names = sorted(model.model_fields, key=lambda n: (n not in LONG, n == "max_cost_usd"))  # the prompt first
    for name in names:
        info = model.model_fields[name]
        if name in LEFT_OUT:
            continue
        dotted = prefix + name
        annotation = _bare(info.annotation)
        value = values.get(name, None if info.is_required() else info.get_default(call_default_factory=True))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            inner = value.model_dump() if isinstance(value, BaseModel) else value or {}
            found.append(Group(dotted, label_of(name), fields_of(annotation, inner, dotted + ".")))
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        low, high = _bounds(info)
        made = Field(dotted, label_of(name), "text", value, info.is_required(), minimum=low, maximum=high)
        if choices := _choices(annotation):
            made.kind, made.choices = "select", choices
        elif annotation is bool:
            made.kind = "boolean"
        elif annotation is int:
            made.kind = "integer"
        elif annotation is float:
            made.kind = "number"
        elif get_origin(annotation) is list:
            made.kind, made.value = "list", "\n".join(str(v) for v in value or [])
        elif name in LONG:
            made.kind = "textarea"
        found.append(made)
    return found


def offer_models(fields: list[Field | Group], catalog: Catalog) -> list[Field | Group]:
    """The form's `models` as one select per kind: the catalog's models of that kind, its default marked and
    chosen unless the run being started again chose another."""
    for group in fields:
        if not isinstance(group, Group) or group.name != "models":
            continue
        by_kind = {made.name.rsplit(".", 1)[-1]: made for made in group.fields if isinstance(made, Field)}
        for kind in KINDS:
            if (made := by_kind.get(kind)) is None:
                continue
            default = catalog.default(kind).id
            made.kind, made.label = "select", f"{kind.capitalize()} model"
            made.choices = [model.id for model in catalog.of_kind(kind)]
            made.shown = {default: f"{default} (default)"}
            made.value = made.value if made.value in made.choices else default
    return fields
