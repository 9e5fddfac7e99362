"""mcp-operator: McpDeployment resources reconciled against cloud targets."""
