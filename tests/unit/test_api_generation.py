"""The API's one source of truth: models -> CRD (crds/ and the Helm chart's copy) -> docs."""

from __future__ import annotations

import yaml

from mcp_operator.api import generate, models


def test_generated_files_are_up_to_date() -> None:
    for path, text in generate.outputs().items():
        assert path.exists(), f"{path} is missing: run `make generate`"
        assert path.read_text() == text, f"{path} is stale: run `make generate`"


def test_helm_chart_carries_the_same_crd_files() -> None:
    crds = {p.name: p.read_bytes() for p in generate.CRD_PATH.parent.glob("*.yaml") if p.name != "kustomization.yaml"}
    chart = {p.name: p.read_bytes() for p in generate.HELM_CRD_DIR.glob("*.yaml")}
    assert chart == crds


def _fields(schema: dict, prefix: str = "") -> dict[str, dict]:
    found = {}
    for name, field in schema.get("properties", {}).items():
        found[prefix + name] = field
        found.update(_fields(field, f"{prefix}{name}."))
        found.update(_fields(field.get("items", {}), f"{prefix}{name}[]."))
    return found


def test_every_spec_field_is_described_and_matches_the_model_defaults() -> None:
    crd = yaml.safe_load(generate.CRD_PATH.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    fields = _fields(spec)
    assert [path for path, field in fields.items() if not field.get("description")] == []
    defaults = models.McpDeploymentSpec.model_validate(
        {"target": {"type": "azure-container-apps"}, "server": {"image": "x"}, "azure": {}})
    assert fields["azure.targetPort"]["default"] == defaults.azure.target_port == 8080  # type: ignore[union-attr]
    assert fields["azure.minReplicas"]["default"] == defaults.azure.min_replicas == 1  # type: ignore[union-attr]
    assert fields["server.allowedOrigins"]["default"] == defaults.server.allowed_origins == ["*"]
    assert fields["revisionHistoryLimit"]["default"] == defaults.revision_history_limit == 10


def test_docs_list_every_field_and_rule() -> None:
    docs = generate.DOCS_PATH.read_text()
    crd = yaml.safe_load(generate.CRD_PATH.read_text())
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path in _fields(root["properties"]["spec"]):
        assert f"`spec.{path}`" in docs, path
    assert "target.type is immutable" in docs


def test_every_row_of_the_api_tables_is_one_line() -> None:
    """A default or rule that wraps would break the Markdown table it stands in."""
    from itertools import pairwise
    from pathlib import Path

    lines = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text().splitlines()
    for before, line in pairwise(lines):
        if before.startswith("|") and line and not line.startswith("|"):
            raise AssertionError(f"a table row continues on the next line: {line[:80]!r}")


def test_the_simulator_docs_name_the_request_records_fields() -> None:
    import dataclasses
    from pathlib import Path

    from simcore.faults import RecordedRequest

    row = next(line for line in (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text().splitlines()
               if line.startswith("| request record"))
    assert f"RecordedRequest({', '.join(f.name for f in dataclasses.fields(RecordedRequest))})" in row
