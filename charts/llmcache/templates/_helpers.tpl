{{/*
Names, labels and image references shared by every template (rbac.yaml included).
*/}}

{{- define "llmcache.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmcache.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "llmcache.namespace" -}}
{{- .Release.Namespace -}}
{{- end -}}

{{- define "llmcache.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmcache.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmcache.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmcache.labels" -}}
helm.sh/chart: {{ include "llmcache.chart" . }}
{{ include "llmcache.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llmcache
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Per-component names and selector labels: call with (dict "ctx" $ "component" "operator"). */}}
{{- define "llmcache.componentName" -}}
{{- printf "%s-%s" (include "llmcache.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmcache.componentSelectorLabels" -}}
{{ include "llmcache.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "llmcache.componentLabels" -}}
{{ include "llmcache.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "llmcache.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "llmcache.componentName" (dict "ctx" . "component" "operator")) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Service names the operator hands to injected sidecars and the API server calls. */}}
{{- define "llmcache.operatorServiceName" -}}
{{- include "llmcache.componentName" (dict "ctx" . "component" "operator") -}}
{{- end -}}

{{- define "llmcache.webhookServiceName" -}}
{{- include "llmcache.componentName" (dict "ctx" . "component" "webhook") -}}
{{- end -}}

{{- define "llmcache.webhookSecretName" -}}
{{- default (include "llmcache.componentName" (dict "ctx" . "component" "webhook-tls")) .Values.webhook.tls.secretName -}}
{{- end -}}

{{- define "llmcache.webhookConfigName" -}}
{{- include "llmcache.componentName" (dict "ctx" . "component" "injector") -}}
{{- end -}}

{{- define "llmcache.redisName" -}}
{{- include "llmcache.componentName" (dict "ctx" . "component" "redis") -}}
{{- end -}}

{{- define "llmcache.embedderName" -}}
{{- include "llmcache.componentName" (dict "ctx" . "component" "embedder") -}}
{{- end -}}

{{/*
Image of one flavour of the one multi-stage Dockerfile: (dict "ctx" $ "flavour" "operator").
The sidecar flavour is tagged <tag>, the others <tag>-<flavour>; a component's own
"image" value (a full reference) wins.
*/}}
{{- define "llmcache.image" -}}
{{- $img := .ctx.Values.image -}}
{{- $tag := default .ctx.Chart.AppVersion $img.tag -}}
{{- if eq .flavour "sidecar" -}}
{{- printf "%s:%s" $img.repository $tag -}}
{{- else -}}
{{- printf "%s:%s-%s" $img.repository $tag .flavour -}}
{{- end -}}
{{- end -}}

{{- define "llmcache.operatorImage" -}}
{{- default (include "llmcache.image" (dict "ctx" . "flavour" "operator")) .Values.operator.image -}}
{{- end -}}

{{- define "llmcache.sidecarImage" -}}
{{- default (include "llmcache.image" (dict "ctx" . "flavour" "sidecar")) .Values.sidecar.image -}}
{{- end -}}

{{- define "llmcache.embedderImage" -}}
{{- default (include "llmcache.image" (dict "ctx" . "flavour" "embed")) .Values.embedder.image -}}
{{- end -}}

{{/* The Redis URL operator-managed policies default to, or "" (with the Secret form handled apart). */}}
{{- define "llmcache.redisUrl" -}}
{{- if .Values.redis.bundled.enabled -}}
{{- printf "redis://%s.%s.svc:%d/0" (include "llmcache.redisName" .) .Release.Namespace (int .Values.redis.bundled.port) -}}
{{- else -}}
{{- .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{- define "llmcache.embedderUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "llmcache.embedderName" .) .Release.Namespace (int .Values.embedder.port) -}}
{{- end -}}

{{/* The security context every llmcache container runs with (the image's UID 65532). */}}
{{- define "llmcache.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
