"""Google's discovery documents as the simulator's contract: routes, and every request and answer checked.

The documents are the ones google-api-python-client ships (``discovery_cache/documents``): run v2, Secret
Manager v1, Logging v2. A request whose path no method of them matches is a 404; a body with a field the
schema does not have, or a value of the wrong type, is the 400 Google gives ("Invalid JSON payload
received. Unknown name ..."). Enums are accepted as names or as integers (their index), as the REST
client sends them (``$alt=json;enum-encoding=int``); answers are given with integers when asked so.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
JSON = dict[str, Any]
_DURATION = re.compile(r"^-?[0-9]+(\.[0-9]{1,9})?s$")


@dataclass(frozen=True)
class Method:
    api: str  # run, secretmanager, logging
    id: str  # e.g. run.projects.locations.services.patch
    http_method: str
    pattern: re.Pattern[str]
    parameters: JSON
    request: str | None  # the request body's schema
    response: str | None

    @property
    def short(self) -> str:
        """The resource and verb, e.g. services.patch."""
        return ".".join(self.id.split(".")[-2:])


class Api:
    def __init__(self, name: str, document: JSON):
        self.name = name
        self.schemas: dict[str, JSON] = document["schemas"]
        self.methods: list[Method] = []
        self._collect(document)
        # A custom verb (``name:getIamPolicy``) would also match the plain ``{+name}`` of get: verbs are tried first.
        self.methods.sort(key=lambda m: ":" not in m.pattern.pattern)

    def _collect(self, node: JSON) -> None:
        for method in node.get("methods", {}).values():
            self.methods.append(Method(self.name, method["id"], method["httpMethod"], _path_pattern(method),
                                       method.get("parameters", {}), (method.get("request") or {}).get("$ref"),
                                       (method.get("response") or {}).get("$ref")))
        for child in node.get("resources", {}).values():
            self._collect(child)

    def match(self, http_method: str, path: str) -> tuple[Method, dict[str, str]] | None:
        for method in self.methods:
            found = method.pattern.fullmatch(path)
            if found and method.http_method == http_method:
                return method, found.groupdict()
        return None

    # ----- checking ------------------------------------------------------------------------------------
    def problems(self, schema: str, value: Any, where: str) -> list[str]:
        """What in ``value`` the schema does not allow, in Google's words."""
        found: list[str] = []
        self._check({"$ref": schema}, value, where, found)
        return found

    def _check(self, schema: JSON, value: Any, where: str, found: list[str]) -> None:
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if value is None:
            return
        if kind == "object":
            if not isinstance(value, dict):
                found.append(f"Invalid value at '{where}': expected an object")
                return
            properties = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if properties is not None and key in properties:
                    self._check(properties[key], item, f"{where}.{key}", found)
                elif extra is not None:
                    self._check(extra, item, f"{where}[{key!r}]", found)
                elif properties is not None and key != "@type":  # "@type" names an Any's message
                    found.append(f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.")
        elif kind == "array":
            if not isinstance(value, list):
                found.append(f"Invalid value at '{where}': expected a list")
                return
            for index, item in enumerate(value):
                self._check(schema.get("items", {}), item, f"{where}[{index}]", found)
        elif kind == "string":
            self._check_string(schema, value, where, found)
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
                found.append(f"Invalid value at '{where}' (TYPE_INT32), {json.dumps(value)}")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                found.append(f"Invalid value at '{where}' (TYPE_DOUBLE), {json.dumps(value)}")
        elif kind == "boolean" and not isinstance(value, bool):
            found.append(f"Invalid value at '{where}' (TYPE_BOOL), {json.dumps(value)}")

    @staticmethod
    def _check_string(schema: JSON, value: Any, where: str, found: list[str]) -> None:
        enum = schema.get("enum")
        if enum is not None:
            if isinstance(value, bool) or not (value in enum or (isinstance(value, int) and 0 <= value < len(enum))):
                found.append(f"Invalid value at '{where}' (type.googleapis.com/enum), {json.dumps(value)}")
            return
        fmt = schema.get("format")
        if fmt in ("int64", "uint64"):
            if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
                found.append(f"Invalid value at '{where}' (TYPE_INT64), {json.dumps(value)}")
            return
        if not isinstance(value, str):
            found.append(f"Invalid value at '{where}' (TYPE_STRING), {json.dumps(value)}")
        elif fmt == "google-duration" and not _DURATION.fullmatch(value):
            found.append(f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Duration), Field '{where}', "
                         f"Illegal duration format; duration must end with 's'")
        elif fmt == "byte":
            try:
                base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                found.append(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed")

    # ----- enums ---------------------------------------------------------------------------------------
    def enums(self, schema: str, value: Any, as_names: bool) -> Any:
        """``value`` with every enum as its name (``as_names``) or as its index (what enum-encoding=int asks for)."""
        return self._enums({"$ref": schema}, value, as_names)

    def _enums(self, schema: JSON, value: Any, as_names: bool) -> Any:
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if kind == "object" and isinstance(value, dict):
            properties = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            return {key: self._enums(properties.get(key) or extra or {}, item, as_names) for key, item in value.items()}
        if kind == "array" and isinstance(value, list):
            return [self._enums(schema.get("items", {}), item, as_names) for item in value]
        enum = schema.get("enum")
        if enum is not None:
            if as_names and isinstance(value, int) and not isinstance(value, bool):
                return enum[value]
            if not as_names and isinstance(value, str) and value in enum:
                return enum.index(value)
        return value


def _path_pattern(method: JSON) -> re.Pattern[str]:
    """The method's flatPath/path as a regular expression, its parameters as named groups with their patterns."""
    path: str = method["path"]
    parameters = method.get("parameters", {})

    def group(found: re.Match[str]) -> str:
        name = found.group(1).lstrip("+")
        pattern = parameters.get(name, {}).get("pattern", "^[^/]+$").lstrip("^").rstrip("$")
        return f"(?P<{name.replace('.', '_')}>{pattern})"

    return re.compile("/" + re.sub(r"\{([^}]+)\}", group, re.sub(r"[.:]", lambda m: "\\" + m.group(0), path)))


@cache
def api(name: str) -> Api:
    file = {"run": "run.v2.json", "secretmanager": "secretmanager.v1.json", "logging": "logging.v2.json"}[name]
    return Api(name, json.loads((DOCUMENTS / file).read_text()))


def revision_of_documents() -> dict[str, str]:
    """Which revision of each document the simulator checks against (for its info and the docs)."""
    return {name: json.loads((DOCUMENTS / f"{name}.{v}.json").read_text())["revision"]
            for name, v in (("run", "v2"), ("secretmanager", "v1"), ("logging", "v2"))}
