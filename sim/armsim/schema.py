"""Validation of request and response bodies against the official Microsoft.App OpenAPI document.

The document is Swagger 2.0 and refers to ARM's shared ``common-types`` files, which are not part of
the fixture set. The few shared definitions it uses are restated here from the ARM resource
contract (a tracked resource has a required ``location``; identities have a required ``type``).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

_COMMON_PREFIX = "../../../../../../common-types/resource-management/v5/"
_COMMON: dict[str, Any] = {
    "Resource": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "type": {"type": "string"}}},
    "ProxyResource": {"allOf": [{"$ref": "#/definitions/__common_Resource"}]},
    "TrackedResource": {
        "allOf": [{"$ref": "#/definitions/__common_Resource"}],
        "required": ["location"],
        "properties": {"location": {"type": "string"}, "tags": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
    "ManagedServiceIdentity": {
        "type": "object",
        "required": ["type"],
        "properties": {
            # Official examples spell the combined type both with and without a space; ARM accepts both.
            "type": {"type": "string",
                     "enum": ["None", "SystemAssigned", "UserAssigned", "SystemAssigned,UserAssigned",
                              "SystemAssigned, UserAssigned"]},
            "userAssignedIdentities": {"type": "object"},
        },
    },
    "ErrorResponse": {"type": "object"},
    "CheckNameAvailabilityRequest": {"type": "object"},
    "CheckNameAvailabilityResponse": {"type": "object"},
}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_COMMON_PREFIX):
                out[key] = "#/definitions/__common_" + value.rsplit("/", 1)[1]
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _without_required(node: Any) -> Any:
    """A PATCH body is a partial resource: the same schema with nothing required."""
    if isinstance(node, dict):
        return {k: _without_required(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_without_required(item) for item in node]
    return node


class OpenApiDocument:
    def __init__(self, path: Path):
        self.path = path
        raw = json.loads(path.read_text())
        self.document = _rewrite_refs(raw)
        self.definitions = self.document["definitions"]
        for name, schema in _COMMON.items():
            self.definitions[f"__common_{name}"] = schema
        self._partial_definitions = _without_required(self.definitions)

    def operations(self) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """operationId -> (method, path template, operation)."""
        found = {}
        for path, item in self.document["paths"].items():
            for method, operation in item.items():
                if isinstance(operation, dict) and "operationId" in operation:
                    found[operation["operationId"]] = (method.upper(), path, operation)
        return found

    def errors(self, definition: str, body: Any, partial: bool = False) -> list[str]:
        """Human-readable violations of ``#/definitions/<definition>`` by ``body`` (empty when valid)."""
        definitions = self._partial_definitions if partial else self.definitions
        schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
        validator = jsonschema.Draft4Validator(schema)
        messages = []
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(body)"
            messages.append(f"{where}: {error.message}")
        return messages


@cache
def load_document(path: str) -> OpenApiDocument:
    return OpenApiDocument(Path(path))


def copy_definition(document: OpenApiDocument, name: str) -> dict[str, Any]:
    return copy.deepcopy(document.definitions[name])
