"""The pmcp.run simulator, its reconstructed schema, and the documents the operator sends.

pmcp.run publishes no schema and no client library but cargo-pmcp. The contract here is what cargo-pmcp sends
(sim/pmcprunsim/cargo_pmcp_operations.json, recorded from its source): every document of the operator must name the
same operation, with the same variables and types, the same selected fields, and validate against the simulator's
schema, which must hold each field cargo-pmcp requires as non-null. The simulator is driven by gql, a GraphQL client
nobody here wrote, and by the operator's own client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError, TransportServerError
from gql.transport.requests import RequestsHTTPTransport
from graphql import (
    FieldNode,
    GraphQLNonNull,
    GraphQLObjectType,
    OperationDefinitionNode,
    get_named_type,
    parse,
    print_ast,
    validate,
)

from mcp_operator.contract import TerminalError
from mcp_operator.targets.pmcp_run.client import Credentials, PmcpRunClient
from mcp_operator.targets.pmcp_run.documents import DOCUMENTS
from pmcprunsim.server import load_schema
from pmcprunsim.testing import PmcpRunSimulatorThread, template

pytestmark = pytest.mark.contract
RECORD = json.loads((Path(__file__).parents[2] / "sim" / "pmcprunsim" / "cargo_pmcp_operations.json").read_text())
OPERATIONS = {op["name"]: op for op in RECORD["operations"]}


@pytest.fixture(scope="module")
def sim() -> Iterator[PmcpRunSimulatorThread]:
    running = PmcpRunSimulatorThread().start()
    yield running
    running.stop()


def session(sim: PmcpRunSimulatorThread) -> requests.Session:
    found = requests.Session()
    found.trust_env = False
    found.verify = sim.info["caBundle"]
    return found


def token(sim: PmcpRunSimulatorThread) -> str:
    answer = session(sim).post(sim.info["apiUrl"] + "/oauth2/token", auth=(sim.info["clientId"], sim.info["clientSecret"]),
                               data={"grant_type": "client_credentials"})
    assert answer.status_code == 200
    return str(answer.json()["access_token"])


def gql_client(sim: PmcpRunSimulatorThread, authorization: str | None = None) -> Client:
    transport = RequestsHTTPTransport(url=sim.info["graphqlUrl"], verify=sim.info["caBundle"],
                                      headers={"Authorization": authorization if authorization is not None else token(sim)})
    return Client(transport=transport, fetch_schema_from_transport=False)


def run(client: Client, document: str, **variables: Any) -> Any:
    """One operation through gql (a GraphQLRequest with its variables); the root field's answer."""
    request = gql(document)
    request.variable_values = variables
    answer = client.execute(request)
    return next(iter(answer.values()))


def shape(document: str) -> tuple[str, str, dict[str, str], list[str], list[str]]:
    """(kind, root field, variable -> type, selected fields, fields selected under items) of one operation document."""
    operation = parse(document).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    variables = {v.variable.name.value: print_ast(v.type) for v in operation.variable_definitions or ()}
    root = operation.selection_set.selections[0]
    assert isinstance(root, FieldNode) and root.selection_set is not None
    fields = [f for f in root.selection_set.selections if isinstance(f, FieldNode)]
    items = next((f for f in fields if f.name.value == "items"), None)
    nested = [f.name.value for f in items.selection_set.selections if isinstance(f, FieldNode)] if items and items.selection_set else []
    return operation.operation.value, root.name.value, variables, [f.name.value for f in fields], nested


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_each_document_is_cargo_pmcps_and_valid_against_the_schema(name: str) -> None:
    recorded = OPERATIONS[name]
    kind, field, variables, selected, nested = shape(DOCUMENTS[name])
    assert (kind, field) == (recorded["kind"], recorded["field"])
    assert variables == recorded["variables"], "the same variables, with the same types"
    assert selected == recorded["selected"], "the same fields, in cargo-pmcp's order"
    assert nested == recorded.get("items", [])
    assert validate(load_schema(), parse(DOCUMENTS[name])) == []


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_the_schema_holds_what_cargo_pmcp_requires_as_non_null(name: str) -> None:
    recorded = OPERATIONS[name]
    schema = load_schema()
    root = schema.mutation_type if recorded["kind"] == "mutation" else schema.query_type
    assert root is not None
    result = get_named_type(root.fields[recorded["field"]].type)
    assert isinstance(result, GraphQLObjectType)
    for selected in recorded["selected"]:
        assert selected in result.fields, f"{result.name}.{selected}"
        required = isinstance(result.fields[selected].type, GraphQLNonNull)
        assert required == (selected in recorded["required"]), f"{result.name}.{selected} nullability"
    assert set(root.fields[recorded["field"]].args) == set(recorded["variables"])


def test_discovery_names_the_graphql_endpoint_and_a_token_is_issued_for_client_credentials(sim: PmcpRunSimulatorThread) -> None:
    found = session(sim).get(sim.info["apiUrl"] + "/.well-known/pmcp-config").json()
    assert found["graphql_url"] == sim.info["graphqlUrl"] and found["api_type"] == "graphql"
    assert {"cognito_client_id", "cognito_domain"} <= set(found)
    refused = session(sim).post(sim.info["apiUrl"] + "/oauth2/token", auth=(sim.info["clientId"], "wrong"),
                                data={"grant_type": "client_credentials"})
    assert refused.status_code == 400 and refused.json() == {"error": "invalid_client"}


def test_the_raw_authorization_header_is_checked_as_appsync_does(sim: PmcpRunSimulatorThread) -> None:
    query = gql("query ListDeployments { listDeployments { items { id } } }")
    assert "items" in gql_client(sim).execute(query)["listDeployments"], "the raw token, no Bearer"
    for header in ("", f"Bearer {token(sim)}", "not-a-token"):
        with pytest.raises((TransportServerError, TransportQueryError)) as refused:
            gql_client(sim, header).execute(query)
        assert "UnauthorizedException" in str(refused.value) or getattr(refused.value, "code", None) == 401


def test_an_unknown_field_is_appsyncs_field_undefined(sim: PmcpRunSimulatorThread) -> None:
    with pytest.raises(TransportQueryError) as refused:
        run(gql_client(sim), "query GetDeployment($id: ID!) { getDeployment(id: $id) { id nextToken } }", id="dep_1")
    assert "Validation error of type FieldUndefined" in str(refused.value)


def upload(sim: PmcpRunSimulatorThread, client: Client, project: str, body: bytes, bootstrap: bytes = b"\x7fELF") -> dict[str, Any]:
    urls = run(client, DOCUMENTS["GetUploadUrls"], projectName=project, templateSize=len(body), bootstrapSize=len(bootstrap))
    http = session(sim)
    assert http.put(urls["templateUploadUrl"], data=body, headers={"Content-Type": "application/json"}).status_code == 200
    assert http.put(urls["bootstrapUploadUrl"], data=bootstrap,
                    headers={"Content-Type": "application/octet-stream"}).status_code == 200
    return urls  # type: ignore[no-any-return]


def test_a_deployment_moves_through_its_states_and_a_bad_template_fails_with_a_message(sim: PmcpRunSimulatorThread) -> None:
    client = gql_client(sim)
    good = upload(sim, client, "contract-good", json.dumps(template("contract-good")).encode())
    created = run(client, DOCUMENTS["CreateDeploymentFromS3"], templateS3Key=good["templateS3Key"],
                  bootstrapS3Key=good["bootstrapS3Key"], projectName="contract-good", runtime="provided.al2023",
                  memorySize=512, timeout=30)
    assert created["status"] == "pending" and created["deploymentId"].startswith("dep_")
    seen = {created["status"]}
    for _ in range(100):
        found = run(client, DOCUMENTS["GetDeployment"], id=created["deploymentId"])
        seen.add(found["status"])
        if found["status"] in ("success", "failed"):
            break
        time.sleep(0.02)
    assert found["status"] == "success" and found["url"] == "https://contract-good.mcp.pmcp-sim.dev/mcp"
    assert seen <= {"pending", "validating", "deploying", "success"} and found["completedAt"]

    bad = upload(sim, client, "contract-bad", b'{"Resources": {}}')
    deployment_id = run(client, DOCUMENTS["CreateDeploymentFromS3"], templateS3Key=bad["templateS3Key"],
                        bootstrapS3Key=bad["bootstrapS3Key"], projectName="contract-bad")["deploymentId"]
    for _ in range(100):
        found = run(client, DOCUMENTS["GetDeployment"], id=deployment_id)
        if found["status"] == "failed":
            break
        time.sleep(0.02)
    assert found["status"] == "failed" and "no AWS::Lambda::Function" in found["errorMessage"]


def test_upload_urls_check_the_declared_size_and_their_signature(sim: PmcpRunSimulatorThread) -> None:
    client = gql_client(sim)
    urls = run(client, DOCUMENTS["GetUploadUrls"], projectName="contract-sizes", templateSize=10, bootstrapSize=4)
    assert urls["expiresIn"] == 900
    http = session(sim)
    wrong_size = http.put(urls["templateUploadUrl"], data=b"{}", headers={"Content-Type": "application/json"})
    assert wrong_size.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in wrong_size.text
    forged = http.put(urls["bootstrapUploadUrl"].replace("X-Amz-Signature=", "X-Amz-Signature=0"), data=b"\x7fELF")
    assert forged.status_code == 403
    with pytest.raises(TransportQueryError) as refused:  # a deployment of keys never uploaded is refused
        run(client, DOCUMENTS["CreateDeploymentFromS3"], templateS3Key=urls["templateS3Key"],
            bootstrapS3Key=urls["bootstrapS3Key"], projectName="contract-sizes")
    assert "was not uploaded" in str(refused.value)


def test_the_operators_client_sends_cargo_pmcps_headers_and_body(sim: PmcpRunSimulatorThread) -> None:
    async def call() -> Any:
        client = PmcpRunClient(sim.info["apiUrl"], Credentials("test", sim.info["clientId"], sim.info["clientSecret"]),
                               sim.info["caBundle"])
        try:
            return await client.execute("ListDeployments")
        finally:
            await client.close()

    before = len(sim.simulator.graphql_log)
    assert "items" in asyncio.run(call())
    sent = sim.simulator.graphql_log[before:]
    assert len(sent) == 1
    assert not sent[0]["authorization"].startswith("Bearer ") and sent[0]["authorization"]
    assert sent[0]["contentType"] == "application/json" and sent[0]["bodyKeys"] == ["query", "variables"], \
        "no operationName, as cargo-pmcp"


def test_the_operators_client_says_which_credentials_were_refused(sim: PmcpRunSimulatorThread) -> None:
    async def call() -> None:
        client = PmcpRunClient(sim.info["apiUrl"], Credentials("Secret team/pmcp", sim.info["clientId"], "nope"),
                               sim.info["caBundle"])
        try:
            await client.execute("ListDeployments")
        finally:
            await client.close()

    with pytest.raises(TerminalError) as refused:
        asyncio.run(call())
    assert refused.value.reason == "CredentialsInvalid" and "Secret team/pmcp" in refused.value.message
    assert "invalid_client" in refused.value.message and "nope" not in refused.value.message


def test_a_fleets_first_passes_share_one_discovery_and_one_token(sim: PmcpRunSimulatorThread) -> None:
    async def many() -> None:
        client = PmcpRunClient(sim.info["apiUrl"], Credentials("test", sim.info["clientId"], sim.info["clientSecret"]),
                               sim.info["caBundle"])
        try:
            await asyncio.gather(*(client.execute("ListDeployments") for _ in range(20)))
        finally:
            await client.close()

    before = sim.simulator.tokens_issued
    since = time.monotonic()
    asyncio.run(many())
    assert sim.simulator.tokens_issued - before == 1
    assert sum(1 for r in sim.simulator.requests if r.at >= since and r.operation == "Discovery") == 1
