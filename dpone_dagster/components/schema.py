"""The JSON schema ``dg check yaml`` validates a dpone ``defs.yaml`` against, made to name fields.

Dagster derives the schema from the component's fields and lets every field also
be a string (a ``{{ template }}``), so a section like ``resource:`` becomes
``anyOf: [{$ref: resource model}, string, null]``. ``jsonschema`` reports a
failed ``anyOf`` as "... is not valid under any of the given schemas", hiding
*which* field was wrong. Inlining the section as one schema of type
``[object, string, null]`` accepts exactly the same documents (``properties`` and
``additionalProperties`` apply to objects only), and a typo then reads
"Additional properties are not allowed ('lock_dirr' was unexpected)" at
``attributes.resource``.

The string Dagster admits besides a number, a boolean, an enum or a section is
meant for a template, so the published schema requires ``{{`` in it: a misspelt
``resume_policy: restartt`` is refused by ``dg check yaml`` at its path, instead
of at load time. (Fields that are strings, lists or mappings anyway are left alone.)
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel

__all__ = ["inline_sections", "with_field_naming_schema"]

_REF_PREFIX = "#/$defs/"
_PLAIN = ({"type": "string"}, {"type": "null"})
#: A string that can only be a Jinja template (``pattern`` is a search, not a full match).
_TEMPLATE = {"type": "string", "pattern": r"\{\{"}
_SCALAR_TYPES = {"integer", "number", "boolean"}


def _section_ref(prop: dict[str, Any]) -> tuple[str, list[str]] | None:
    """``(definition name, extra types)`` when ``prop`` is ``anyOf [ref, string?, null?]``."""
    options = prop.get("anyOf")
    if not isinstance(options, list):
        return None
    refs = [o["$ref"] for o in options if isinstance(o, dict) and set(o) == {"$ref"}]
    others = [o for o in options if not (isinstance(o, dict) and set(o) == {"$ref"})]
    if len(refs) != 1 or not refs[0].startswith(_REF_PREFIX):
        return None
    if any(other not in _PLAIN for other in others):
        return None
    return refs[0][len(_REF_PREFIX) :], [other["type"] for other in others]


def _only_templates(prop: dict[str, Any]) -> None:
    """In ``anyOf [scalar or enum, string]``, the string must be a template."""
    options = prop.get("anyOf")
    if not isinstance(options, list) or {"type": "string"} not in options:
        return
    others = [o for o in options if o not in _PLAIN]
    if others and all(o.get("type") in _SCALAR_TYPES or "enum" in o for o in others):
        prop["anyOf"] = [_TEMPLATE if o == {"type": "string"} else o for o in options]


def _inline(node: dict[str, Any], defs: dict[str, Any]) -> None:
    for name, prop in list(node.get("properties", {}).items()):
        _only_templates(prop)
        found = _section_ref(prop)
        if found is None or found[0] not in defs:
            continue
        target, extra_types = found
        section = copy.deepcopy(defs[target])
        _inline(section, defs)
        section.pop("title", None)
        merged = {**section, **{key: value for key, value in prop.items() if key != "anyOf"}}
        merged["type"] = ["object", *extra_types]
        if "string" in extra_types:
            merged["pattern"] = _TEMPLATE["pattern"]
        node["properties"][name] = merged


def inline_sections(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``anyOf [section, string, null]`` property inlined."""
    result = copy.deepcopy(schema)
    _inline(result, result.get("$defs", {}))
    return result


@functools.cache
def with_field_naming_schema(model: type[BaseModel]) -> type[BaseModel]:
    """A subclass of ``model`` that validates the same but publishes the inlined schema."""

    class Inlined(model):  # type: ignore[valid-type, misc]
        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return inline_sections(super().model_json_schema(*args, **kwargs))

    Inlined.__name__ = model.__name__
    Inlined.__qualname__ = model.__qualname__
    return Inlined
