"""The machine-readable contract: botocore's bundled service models, read at run time.

Every request the simulator accepts is parsed by the operation's input shape and checked against it,
and every answer is checked against the output shape before it is sent, both with what botocore's own
validator skips (``max``, ``pattern``, numeric ranges, enums). A simulator bug that would let the operator
rely on something AWS never sends fails here, not in production.

Protocols: Lambda is rest-json, CloudWatch Logs json, IAM and STS query (answers in XML).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

SERVICES = ("lambda", "logs", "iam", "sts")
XML_NAMESPACES = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/", "sts": "https://sts.amazonaws.com/doc/2011-06-15/"}


class ModelError(Exception):
    """A request (or, a simulator bug, an answer) that its shape does not allow."""


@cache
def service(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def problems(shape: Shape, value: Any, where: str = "") -> list[str]:
    """Everything wrong with ``value`` as a ``shape``: required members, types, enums, lengths, patterns, ranges."""
    found: list[str] = []
    kind = shape.type_name
    name = where or shape.name
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        if not isinstance(value, Mapping):
            return [f"{name}: expected a structure"]
        for member in shape.required_members:
            if value.get(member) is None:
                found.append(f"{name}: missing required member {member}")
        for key, item in value.items():
            if key not in shape.members:
                found.append(f"{name}: unknown member {key}")
            elif item is not None:
                found += problems(shape.members[key], item, f"{name}.{key}")
        return found
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{name}: expected a list"]
        found += _bounds(name, len(value), meta, "items")
        for index, item in enumerate(value):
            found += problems(shape.member, item, f"{name}[{index}]")
        return found
    if isinstance(shape, MapShape):
        if not isinstance(value, Mapping):
            return [f"{name}: expected a map"]
        found += _bounds(name, len(value), meta, "entries")
        for key, item in value.items():
            found += problems(shape.key, key, f"{name} key")
            found += problems(shape.value, item, f"{name}[{key}]")
        return found
    if kind == "string":
        if not isinstance(value, str):
            return [f"{name}: expected a string"]
        if shape.enum and value not in shape.enum:
            found.append(f"{name}: {value!r} is not one of {', '.join(shape.enum)}")
        found += _bounds(name, len(value), meta, "characters")
        pattern = meta.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(value):
            found.append(f"{name}: {value!r} does not match the pattern {pattern}")
        return found
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{name}: expected an integer"]
        return _range(name, value, meta)
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{name}: expected a number"]
        return _range(name, value, meta)
    if kind == "boolean" and not isinstance(value, bool):
        return [f"{name}: expected a boolean"]
    if kind == "blob" and not isinstance(value, bytes | str):
        return [f"{name}: expected bytes"]
    if kind == "timestamp" and not isinstance(value, datetime | str | int | float):
        return [f"{name}: expected a timestamp"]
    return found


def _bounds(name: str, size: int, meta: Mapping[str, Any], unit: str) -> list[str]:
    if "min" in meta and size < meta["min"]:
        return [f"{name}: {size} {unit}, at least {meta['min']} required"]
    if "max" in meta and size > meta["max"]:
        return [f"{name}: {size} {unit}, at most {meta['max']} allowed"]
    return []


def _range(name: str, value: float, meta: Mapping[str, Any]) -> list[str]:
    if "min" in meta and value < meta["min"]:
        return [f"{name}: {value} is below the minimum {meta['min']}"]
    if "max" in meta and value > meta["max"]:
        return [f"{name}: {value} is above the maximum {meta['max']}"]
    return []


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:  # a Java-only construct: accept rather than refuse what AWS accepts
        return re.compile(".*", re.DOTALL)


def check_output(operation: OperationModel, result: Mapping[str, Any]) -> None:
    """The simulator's own answer, checked before it is sent (a failure here is a simulator bug)."""
    if operation.output_shape is None:
        return
    found = problems(operation.output_shape, {k: v for k, v in result.items() if v is not None})
    if found:
        raise AssertionError(f"{operation.name} answer breaks the model: {'; '.join(found[:5])}")


# ----- rest-json (Lambda) ---------------------------------------------------------------------------
def routes(name: str, operations: tuple[str, ...]) -> list[tuple[str, re.Pattern[str], OperationModel]]:
    """(method, path pattern, operation) of each operation, from the model's own request URIs."""
    table = []
    model = service(name)
    for op_name in operations:
        operation = model.operation_model(op_name)
        uri = operation.http["requestUri"].split("?", 1)[0]
        pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", uri)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        table.append((operation.http["method"], re.compile(f"^{pattern}$"), operation))
    return table


def parse_rest_json(operation: OperationModel, uri: Mapping[str, str], query: Mapping[str, str],
                    headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A rest-json request's parameters, each read from where the input shape says it travels."""
    shape = operation.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    try:
        document = json.loads(body) if body.strip() else {}
    except ValueError as error:
        raise ModelError(f"the request body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise ModelError("the request body must be a JSON object")
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire = member_shape.serialization.get("name", member)
        if location == "uri" and wire in uri:
            params[member] = _scalar(member_shape, uri[wire])
        elif location == "querystring" and wire in query:
            params[member] = _scalar(member_shape, query[wire])
        elif location == "header" and wire in headers:
            params[member] = _scalar(member_shape, headers[wire])
        elif location is None and member in document:
            params[member] = document.pop(member)
    for unknown in document:
        params[unknown] = document[unknown]  # reported by problems() as an unknown member
    return params


def _scalar(shape: Shape, text: str) -> Any:
    if shape.type_name in ("integer", "long"):
        try:
            return int(text)
        except ValueError as error:
            raise ModelError(f"{shape.name}: {text!r} is not an integer") from error
    if shape.type_name == "boolean":
        return text.lower() == "true"
    return text


def rest_json_answer(operation: OperationModel, result: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a rest-json answer: header members as headers, the rest as the JSON body."""
    check_output(operation, result)
    headers: dict[str, str] = {}
    document: dict[str, Any] = {}
    shape = operation.output_shape
    for member, value in result.items():
        if value is None:
            continue
        location = shape.members[member].serialization.get("location") if shape is not None else None
        if location == "header":
            headers[shape.members[member].serialization.get("name", member)] = str(value)
        else:
            document[member] = value
    status = int(operation.http.get("responseCode", 200))
    if shape is None or status == 204:
        return status, headers, b""
    return status, {**headers, "Content-Type": "application/json"}, json.dumps(document, default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(type(value))


# ----- query (IAM, STS) -------------------------------------------------------------------------------
def parse_query(shape: Shape | None, form: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    """A query-protocol request's parameters: ``Tags.member.1.Key=...`` back into structures and lists."""
    if not isinstance(shape, StructureShape):
        return {}
    params: dict[str, Any] = {}
    for member, member_shape in shape.members.items():
        key = prefix + member
        value = _query_value(member_shape, form, key)
        if value is not None:
            params[member] = value
    return params


def _query_value(shape: Shape, form: Mapping[str, str], key: str) -> Any:
    if isinstance(shape, StructureShape):
        nested = parse_query(shape, form, key + ".")
        return nested or None
    if isinstance(shape, ListShape):
        items = []
        index = 1
        while any(k == f"{key}.member.{index}" or k.startswith(f"{key}.member.{index}.") for k in form):
            items.append(_query_value(shape.member, form, f"{key}.member.{index}"))
            index += 1
        return items if items or f"{key}" in form else None
    if key not in form:
        return None
    return _scalar(shape, form[key])


def query_answer(service_name: str, operation: OperationModel, result: Mapping[str, Any], request_id: str) -> bytes:
    """The XML document of a query-protocol answer."""
    check_output(operation, result)
    shape = operation.output_shape
    inner = _xml_members(shape, result) if shape is not None else ""
    wrapper = operation.output_shape.serialization.get("resultWrapper") if operation.output_shape is not None else None
    body = f"<{wrapper}>{inner}</{wrapper}>" if wrapper else ""
    return (f'<{operation.name}Response xmlns="{XML_NAMESPACES[service_name]}">{body}'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation.name}Response>").encode()


def _xml_members(shape: StructureShape, value: Mapping[str, Any]) -> str:
    return "".join(f"<{name}>{_xml_value(shape.members[name], item)}</{name}>"
                   for name, item in value.items() if item is not None)


def _xml_value(shape: Shape, value: Any) -> str:
    if isinstance(shape, StructureShape):
        return _xml_members(shape, value)
    if isinstance(shape, ListShape):
        return "".join(f"<member>{_xml_value(shape.member, item)}</member>" for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return escape(str(value))
