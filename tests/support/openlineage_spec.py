"""Validate an OpenLineage event (a JSON dict) against the spec the client declares.

No package reachable here ships the spec's JSON schema files, so the check uses
what the client *is*: its models in ``openlineage.client.generated`` are generated
from that schema (spec 2-0-2 and its facet schemas). :func:`validate_run_event`
rebuilds the event from the dict, strictly:

- every object becomes the client class its schema names: the event and its parts
  by position, every facet by its ``_schemaURL`` (which must be one the client
  declares, and whose class must be the facet kind its place requires);
- a key the class does not have, a required key that is missing, a value of the
  wrong JSON type, an enum value outside the enum: each is an error naming the path;
- the client's own validators run (``runId`` a UUID, ``eventTime`` an ISO 8601
  time with a time part, URIs), and
- the rebuilt event, serialised by the client's ``Serde``, equals the input.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import types
import typing
from functools import cache
from typing import Any

import attr
from openlineage.client import generated
from openlineage.client.generated import base
from openlineage.client.serde import Serde


class SpecError(AssertionError):
    pass


@cache
def _classes_by_schema() -> dict[str, type]:
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and attr.has(value) and hasattr(value, "_get_schema"):
                found.setdefault(value._get_schema(), value)
    return found


def _init_name(field: attr.Attribute[Any]) -> str:
    return field.alias if getattr(field, "alias", None) else field.name.lstrip("_")


def _fail(path: str, message: str) -> SpecError:
    return SpecError(f"{path or '(event)'}: {message}")


def _build_value(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise _fail(path, "null is not allowed")
        real = [o for o in options if o is not type(None)]
        return _build_value(real[0], value, path)
    if value is None:
        raise _fail(path, "null is not allowed")
    if origin is list:
        if not isinstance(value, list):
            raise _fail(path, f"expected an array, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_build_value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, got {type(value).__name__}")
        _, item = typing.get_args(tp)
        return {k: _build_value(item, v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise _fail(path, f"{value!r} is not one of {[e.value for e in tp]}") from None
    if isinstance(tp, type) and attr.has(tp):
        return _build_object(tp, value, path)
    return _scalar(tp, value, path)


def _scalar(tp: Any, value: Any, path: str) -> Any:
    expected = {str: str, int: int, float: (int, float), bool: bool}.get(tp)
    if expected is None:
        raise _fail(path, f"the client's model has an unexpected type {tp!r}")
    if isinstance(value, bool) and tp is not bool:
        raise _fail(path, f"expected {tp.__name__}, got a boolean")
    if not isinstance(value, expected):
        raise _fail(path, f"expected {tp.__name__}, got {type(value).__name__}")
    return value


def _build_object(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object ({cls.__name__}), got {type(value).__name__}")
    if issubclass(cls, base.BaseFacet):
        cls = _facet_class(cls, value, path)
    attr.resolve_types(cls)
    fields = {f.name: f for f in attr.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            raise _fail(f"{path}.{key}", f"{cls.__name__} has no such property")
        if not field.init:
            expected_value = cls._get_schema()  # type: ignore[attr-defined]
            if item != expected_value:
                raise _fail(f"{path}.{key}", f"expected {expected_value!r}, got {item!r}")
            continue
        kwargs[_init_name(field)] = _build_value(field.type, item, f"{path}.{key}")
    missing = [
        name
        for name, f in fields.items()
        if f.init and f.default is attr.NOTHING and _init_name(f) not in kwargs
    ]
    if missing:
        raise _fail(path, f"{cls.__name__} requires {missing}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"{cls.__name__}: {exc}") from None


def _facet_class(declared: type, value: dict[str, Any], path: str) -> type:
    url = value.get("_schemaURL")
    if not isinstance(url, str):
        raise _fail(path, "a facet needs _schemaURL")
    if not isinstance(value.get("_producer"), str):
        raise _fail(path, "a facet needs _producer")
    cls = _classes_by_schema().get(url)
    if cls is None:
        raise _fail(path, f"_schemaURL {url!r} is not a schema the client declares")
    if not issubclass(cls, declared):
        raise _fail(path, f"{cls.__name__} is not a {declared.__name__}")
    return cls


def validate_run_event(event: dict[str, Any]) -> base.RunEvent:
    """The client's ``RunEvent`` equal to ``event``; :class:`SpecError` naming the first problem."""
    if event.get("schemaURL") != base.RunEvent._get_schema():
        raise _fail("schemaURL", f"expected {base.RunEvent._get_schema()!r}")
    rebuilt = _build_object(base.RunEvent, event, "")
    if Serde.to_dict(rebuilt) != event:
        raise SpecError("the client's serialisation of the rebuilt event differs from the event")
    return rebuilt


def spec_version() -> str:
    """The spec version the client declares (e.g. ``2-0-2``)."""
    return base.RunEvent._get_schema().split("/spec/")[1].split("/")[0]
