{{- define "mcp-operator.name" -}}mcp-operator{{- end -}}

{{- define "mcp-operator.labels" -}}
app.kubernetes.io/name: mcp-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mcp-operator.selector" -}}
app.kubernetes.io/name: mcp-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mcp-operator.fullname" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}-mcp-operator{{- end -}}

{{- define "mcp-operator.rules" -}}
- apiGroups: [mcp.deploy.dev]
  resources: [mcpdeployments]
  verbs: [get, list, watch, patch]
- apiGroups: [mcp.deploy.dev]
  resources: [mcpdeployments/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, patch]  # watched: a rotated key rolls out; patched: the credentials-in-use finalizer
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end -}}
