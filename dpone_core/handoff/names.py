"""Names each scheduler accepts, derived from process and manifest names.

Every derivation is injective in practice: a name the target accepts is kept
as it is; any other is mapped and suffixed with a hash of the original, so
``a/b`` and ``a_b`` never share a CronJob, task id or asset name.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections.abc import Callable

__all__ = [
    "AIRFLOW_TASK_ID_MAX",
    "K8S_NAME_MAX",
    "airflow_id",
    "kubernetes_name",
    "python_identifier",
    "qualified",
]

#: Longest CronJob name Kubernetes accepts (Job names add an 11-character suffix).
K8S_NAME_MAX = 52
#: Longest Airflow task or DAG id.
AIRFLOW_TASK_ID_MAX = 250
_PY_IDENT_MAX = 100
_HASH_LEN = 8

# Names a Dagster asset may not take (dagster._core.definitions.utils.DISALLOWED_NAMES)
# plus the module-level names the generated snippets themselves use.
_RESERVED_IDENTIFIERS = frozenset(
    {
        "context", "conf", "config", "meta", "arg_dict", "dict", "input_arg_dict",
        "output_arg_dict", "int", "str", "float", "bool", "input", "output", "type",
        "dg", "os", "subprocess", "datetime", "BashOperator", "DAG", "CronTriggerTimetable",
        "COMMAND", "WORKING_DIR", "PARTITIONS", "defs", "pipes_subprocess_client",
    }
)  # fmt: skip

_K8S_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_AIRFLOW_ID = re.compile(r"[A-Za-z0-9_.-]+")
_PY_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LEN]


def _fit(name: str, *, valid: bool, mapped: str, separator: str, max_len: int) -> str:
    """``name`` itself when ``valid``; else ``mapped`` cut short plus a hash of ``name``."""
    if valid:
        return name
    suffix = separator + _short_hash(name)
    base = mapped[: max_len - len(suffix)].rstrip(separator) or "dpone"
    return base + suffix


def qualified(namespace: str, name: str, separator: str, derive: Callable[[str], str]) -> str:
    """``derive(namespace + separator + name)``, injective over ``(namespace, name)`` pairs.

    Joined plainly only while the split is unambiguous (no ``separator`` in the
    namespace): ``orders-eu``/``daily`` and ``orders``/``eu-daily`` must not meet.
    Otherwise the pair's repr is derived, which no target accepts as it is, so it is
    mapped and suffixed with its own hash.
    """
    if separator in namespace:
        return derive(repr((namespace, name)))
    return derive(f"{namespace}{separator}{name}")


def kubernetes_name(name: str) -> str:
    """A DNS-1123 label of at most 52 characters derived from ``name``."""
    mapped = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    valid = len(name) <= K8S_NAME_MAX and _K8S_LABEL.fullmatch(name) is not None
    return _fit(name, valid=valid, mapped=mapped, separator="-", max_len=K8S_NAME_MAX)


def airflow_id(name: str) -> str:
    """An Airflow task or DAG id (letters, digits, ``_``, ``-``, ``.``) derived from ``name``."""
    mapped = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    valid = len(name) <= AIRFLOW_TASK_ID_MAX and _AIRFLOW_ID.fullmatch(name) is not None
    return _fit(name, valid=valid, mapped=mapped, separator="_", max_len=AIRFLOW_TASK_ID_MAX)


def python_identifier(name: str) -> str:
    """An ASCII Python identifier, valid as a Dagster asset name, derived from ``name``.

    Keywords, Dagster's reserved names and the names the snippets use are never
    returned.
    """
    mapped = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if mapped[:1].isdigit():
        mapped = "_" + mapped
    valid = (
        len(name) <= _PY_IDENT_MAX
        and _PY_IDENT.fullmatch(name) is not None
        and not keyword.iskeyword(name)
        and name not in _RESERVED_IDENTIFIERS
    )
    return _fit(name, valid=valid, mapped=mapped, separator="_", max_len=_PY_IDENT_MAX)
