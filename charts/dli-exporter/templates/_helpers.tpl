{{/* The chart's name. */}}
{{- define "dli-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resources' name: the release name, or release-chart (63 characters at most). */}}
{{- define "dli-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "dli-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "dli-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dli-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dli-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dli-exporter.labels" -}}
helm.sh/chart: {{ include "dli-exporter.chart" . }}
{{ include "dli-exporter.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dli-exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "dli-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dli-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* registry/repository:tag, or @digest when a digest is given. */}}
{{- define "dli-exporter.image" -}}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* True (non-empty) when more than one replica: a StatefulSet sharding the targets. */}}
{{- define "dli-exporter.sharded" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{/* The credentials Secret's name, or empty when no credentials come from a Secret. */}}
{{- define "dli-exporter.credentialsSecret" -}}
{{- $c := .Values.credentials }}
{{- $inline := or $c.accessKey $c.secretKey $c.securityToken }}
{{- if and $c.existingSecret $inline }}
{{- fail "credentials: set either credentials.existingSecret or credentials.accessKey/secretKey/securityToken (a Secret the chart creates), not both" }}
{{- end }}
{{- if and $inline (not (and $c.accessKey $c.secretKey)) }}
{{- fail "credentials: a created Secret needs both credentials.accessKey and credentials.secretKey" }}
{{- end }}
{{- if not (has $c.mode (list "env" "files")) }}
{{- fail (printf "credentials.mode: %q is not env or files" $c.mode) }}
{{- end }}
{{- if $c.existingSecret }}
{{- $c.existingSecret }}
{{- else if $inline }}
{{- printf "%s-credentials" (include "dli-exporter.fullname" .) }}
{{- end }}
{{- end }}

{{/* The web config Secret's name, or empty when webConfig is off. */}}
{{- define "dli-exporter.webConfigSecret" -}}
{{- $w := .Values.webConfig }}
{{- if $w.enabled }}
{{- if and $w.existingSecret $w.config }}
{{- fail "webConfig: set either webConfig.existingSecret or webConfig.config (a Secret the chart creates), not both" }}
{{- end }}
{{- if not (or $w.existingSecret $w.config) }}
{{- fail "webConfig.enabled needs webConfig.existingSecret or webConfig.config" }}
{{- end }}
{{- default (printf "%s-web-config" (include "dli-exporter.fullname" .)) $w.existingSecret }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the exporter serves HTTPS. */}}
{{- define "dli-exporter.https" -}}
{{- $w := .Values.webConfig }}
{{- if and $w.enabled (or $w.tls (hasKey ($w.config | default dict) "tls_server_config")) }}true{{ end }}
{{- end }}
