"""The GraphQL documents this target sends: the operations cargo-pmcp 0.21 sends, with the same names, variables and
selected fields (docs/pmcp-run.md lists them; the contract tests compare each with that record and validate it against
the simulator's reconstructed schema). Parsed once at import with graphql-core, so a typo fails at start-up, not in a
reconcile pass."""

from __future__ import annotations

from graphql import OperationDefinitionNode, parse, print_ast

_SOURCES = {
    "GetUploadUrls": """
mutation GetUploadUrls($projectName: String!, $templateSize: Int!, $bootstrapSize: Int!) {
  getUploadUrls(projectName: $projectName, templateSize: $templateSize, bootstrapSize: $bootstrapSize) {
    templateUploadUrl templateS3Key bootstrapUploadUrl bootstrapS3Key expiresIn
  }
}""",
    "CreateDeploymentFromS3": """
mutation CreateDeploymentFromS3($templateS3Key: String!, $bootstrapS3Key: String!, $projectName: String!,
    $runtime: String, $memorySize: Int, $timeout: Int, $serverVersion: String, $tier: String,
    $allowComposition: Boolean, $internalOnly: Boolean, $compositionDescription: String) {
  createDeploymentFromS3(templateS3Key: $templateS3Key, bootstrapS3Key: $bootstrapS3Key, projectName: $projectName,
      runtime: $runtime, memorySize: $memorySize, timeout: $timeout, serverVersion: $serverVersion, tier: $tier,
      allowComposition: $allowComposition, internalOnly: $internalOnly, compositionDescription: $compositionDescription) {
    deploymentId status projectName createdAt
  }
}""",
    "GetDeployment": """
query GetDeployment($id: ID!) {
  getDeployment(id: $id) { id status url projectName errorMessage createdAt completedAt }
}""",
    "ListDeployments": """
query ListDeployments {
  listDeployments { items { id projectName } }
}""",
    "DestroyDeployment": """
mutation DestroyDeployment($id: ID!) {
  destroyDeployment(id: $id) { id stackName status message executionArn }
}""",
    "GetDeploymentOperationStatus": """
query GetDeploymentOperationStatus($id: ID!) {
  getDeploymentOperationStatus(id: $id) { id status message executionArn updatedAt }
}""",
    "ConfigureServerOAuth": """
mutation ConfigureServerOAuth($serverId: String!, $enabled: Boolean!, $scopes: [String], $dcrEnabled: Boolean,
    $publicClientPatterns: [String], $sharedPoolName: String) {
  configureServerOAuth(serverId: $serverId, enabled: $enabled, scopes: $scopes, dcrEnabled: $dcrEnabled,
      publicClientPatterns: $publicClientPatterns, sharedPoolName: $sharedPoolName) {
    serverId oauthEnabled userPoolId userPoolRegion discoveryUrl registrationEndpoint authorizationEndpoint tokenEndpoint
  }
}""",
    "DisableServerOAuth": """
mutation DisableServerOAuth($serverId: String!) {
  disableServerOAuth(serverId: $serverId) { serverId oauthEnabled }
}""",
    "FetchServerOAuthEndpoints": """
query FetchServerOAuthEndpoints($serverId: String!) {
  fetchServerOAuthEndpoints(serverId: $serverId) {
    serverId oauthEnabled provider userPoolId userPoolRegion scopes dcrEnabled discoveryUrl registrationEndpoint
    authorizationEndpoint tokenEndpoint
  }
}""",
    "SetServerSecret": """
mutation SetServerSecret($serverId: String!, $secretName: String!, $secretValue: String!, $description: String,
    $audience: SetServerSecretAudience) {
  setServerSecret(serverId: $serverId, secretName: $secretName, secretValue: $secretValue, description: $description,
      audience: $audience) {
    success serverId secretName error warning
  }
}""",
}


def _document(name: str, source: str) -> str:
    parsed = parse(source)
    operation = parsed.definitions[0]
    assert isinstance(operation, OperationDefinitionNode) and operation.name and operation.name.value == name
    return print_ast(parsed)


DOCUMENTS: dict[str, str] = {name: _document(name, source) for name, source in _SOURCES.items()}
