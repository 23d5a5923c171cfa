"""Reading FHIR JSON: bounded loading, one resource or a Bundle, validation with paths.

Every problem is reported with its resource path and field; one bad resource rejects
the whole input (:func:`read_resources`). :func:`bundle` is the inverse of
:func:`iter_resources`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import pydantic

from instruments.errors import FhirError
from instruments.fhir_limits import check_json_bounds

__all__ = [
    "bundle",
    "iter_resources",
    "load_json",
    "read_resources",
    "validate_model",
]

M = TypeVar("M", bound=pydantic.BaseModel)


def load_json(data: str | bytes | Mapping[str, Any], *, source: str = "$") -> Any:
    """Parse JSON text (or pass a mapping through), naming ``source`` when malformed.

    Size and nesting depth are checked before parsing
    (:func:`instruments.fhir_limits.check_json_bounds`).
    """
    if isinstance(data, Mapping):
        return dict(data)
    raw = check_json_bounds(data, source=source)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FhirError([f"{source}: malformed JSON ({exc})"]) from None
    except RecursionError:  # pragma: no cover - the depth bound comes first
        raise FhirError([f"{source}: JSON nested too deeply"]) from None


def iter_resources(
    document: Any, resource_type: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path, resource)`` of ``resource_type`` from one resource or a Bundle.

    Raises
    ------
    FhirError
        If the document is neither, or a Bundle entry holds another resource type.
    """
    if not isinstance(document, dict):
        raise FhirError(["$: expected a JSON object (a FHIR resource)"])
    kind = document.get("resourceType")
    if kind == resource_type:
        yield resource_type, document
        return
    if kind != "Bundle":
        raise FhirError(
            [f"$.resourceType: expected {resource_type} or Bundle, got {kind!r}"]
        )
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(["Bundle.entry: expected a list"])
    problems = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        path = f"Bundle.entry[{i}].resource"
        if not isinstance(resource, dict):
            problems.append(f"{path}: missing")
        elif resource.get("resourceType") != resource_type:
            problems.append(
                f"{path}.resourceType: expected {resource_type},"
                f" got {resource.get('resourceType')!r}"
            )
        else:
            yield path, resource
    if problems:
        raise FhirError(problems)


def validate_model(
    model: type[M], resource: dict[str, Any], path: str, problems: list[str]
) -> M | None:
    """Validate ``resource`` with a fhir.resources model; add problems with paths."""
    try:
        return model.model_validate(resource)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            loc = "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]
            )
            problems.append(f"{path}{loc}: {error['msg']}")
        return None


def bundle(resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap resources in a FHIR ``collection`` Bundle."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": dict(r)} for r in resources],
    }


class _HasResourceId(Protocol):
    @property
    def resource_id(self) -> str: ...


_Parsed = TypeVar("_Parsed", bound=_HasResourceId)


def read_resources(
    data: str | bytes | Mapping[str, Any],
    resource_type: str,
    model_class: type[Any],
    read: Callable[[Any, str, list[str]], _Parsed | None],
    *,
    source: str | None = None,
) -> list[_Parsed]:
    """Validate every resource of a type (single or Bundle) and read it with ``read``.

    All-or-nothing: every problem of every resource is collected, each naming its
    resource path, and raised together; one id sent twice with different content is a
    problem too. With ``source`` (a file name) every problem starts with it.

    Raises
    ------
    FhirError
        With the list of problems.
    """
    try:
        return _read_resources(data, resource_type, model_class, read)
    except FhirError as exc:
        if source is None:
            raise
        raise FhirError([f"{source}: {p}" for p in exc.problems]) from None


def _read_resources(
    data: str | bytes | Mapping[str, Any],
    resource_type: str,
    model_class: type[Any],
    read: Callable[[Any, str, list[str]], _Parsed | None],
) -> list[_Parsed]:
    problems: list[str] = []
    found: dict[str, _Parsed] = {}
    for path, raw in iter_resources(load_json(data), resource_type):
        model = validate_model(model_class, raw, path, problems)
        if model is None:
            continue
        parsed = read(model, path, problems)
        if parsed is None:
            continue
        earlier = found.get(parsed.resource_id)
        if earlier is not None and earlier != parsed:
            problems.append(
                f"{path}.id: {parsed.resource_id!r} sent twice, differently"
            )
        found[parsed.resource_id] = parsed
    if problems:
        raise FhirError(problems)
    return list(found.values())
