{{/*
The operator's command line. Mirrors `llmcache operator --help` (operator/cli.py); the test
tests/test_chart.py parses these args with the operator's own argparse parser.
*/}}
{{- define "llmcache.operatorArgs" -}}
{{- $op := .Values.operator -}}
- operator
- --policy-listen=0.0.0.0:{{ $op.ports.policy }}
- --metrics-listen=0.0.0.0:{{ $op.ports.metrics }}
- --webhook-listen=0.0.0.0:{{ $op.ports.webhook }}
- --webhook-certfile=/etc/llmcache/webhook-tls/tls.crt
- --webhook-keyfile=/etc/llmcache/webhook-tls/tls.key
- --no-manage-webhook
- --operator-service={{ include "llmcache.operatorServiceName" . }}.{{ .Release.Namespace }}.svc
- --sidecar-image={{ include "llmcache.sidecarImage" . }}
{{- if $op.peering.enabled }}
- --peering={{ $op.peering.name }}
- --priority=$(LLMCACHE_PEERING_PRIORITY)
{{- else }}
- --standalone
{{- end }}
- --log-level={{ $op.logLevel }}
{{- if .Values.redis.admin.existingSecret.name }}
- --redis-password-overlap={{ .Values.redis.admin.passwordOverlapSeconds }}
- --redis-password-rotation={{ .Values.redis.admin.passwordRotationSeconds }}
{{- end }}
{{- with $op.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Default Redis for policies without spec.redis: a URL, or a key of an existing Secret. */}}
{{- define "llmcache.operatorRedisEnv" -}}
{{- if .Values.redis.existingSecret.name -}}
- name: LLMCACHE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret.name }}
      key: {{ .Values.redis.existingSecret.key }}
{{- else if (include "llmcache.redisUrl" .) -}}
- name: LLMCACHE_REDIS_URL
  value: {{ include "llmcache.redisUrl" . | quote }}
{{- end }}
{{- if .Values.redis.admin.existingSecret.name }}
- name: LLMCACHE_REDIS_ADMIN_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.admin.existingSecret.name }}
      key: {{ .Values.redis.admin.existingSecret.key }}
{{- end -}}
{{- end -}}

{{/*
Webhook serving certificate when cert-manager is off: generated once per render and
memoised (the Secret, the webhook's caBundle and the Deployment's checksum must agree),
and reused from the live Secret on upgrade so certificates do not churn.
Returns a dict with base64 "ca", "crt", "key".
*/}}
{{- define "llmcache.webhookTlsData" -}}
{{- if not (hasKey .Values "__llmcacheWebhookTls") -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "llmcache.webhookSecretName" .) -}}
{{- $data := dict -}}
{{- if and $secret (hasKey ($secret.data | default dict) "ca.crt") (hasKey $secret.data "tls.crt") (hasKey $secret.data "tls.key") -}}
{{- $data = dict "ca" (index $secret.data "ca.crt") "crt" (index $secret.data "tls.crt") "key" (index $secret.data "tls.key") -}}
{{- else -}}
{{- $svc := include "llmcache.webhookServiceName" . -}}
{{- $days := int .Values.webhook.tls.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $svc) $days -}}
{{- $names := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc .Release.Namespace) nil $names $days $ca -}}
{{- $data = dict "ca" ($ca.Cert | b64enc) "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set .Values "__llmcacheWebhookTls" $data -}}
{{- end -}}
{{- toJson (index .Values "__llmcacheWebhookTls") -}}
{{- end -}}

{{- define "llmcache.webhookTlsChecksum" -}}
{{- if .Values.webhook.certManager.enabled -}}
cert-manager
{{- else -}}
{{- (fromJson (include "llmcache.webhookTlsData" .)).crt | sha256sum | trunc 16 -}}
{{- end -}}
{{- end -}}

{{/*
The operator serves its kopf mutating handler at /<handler id> (kopf routes by path).
*/}}
{{- define "llmcache.webhookPath" -}}
/inject
{{- end -}}

{{- define "llmcache.webhookName" -}}
inject.llmcache.dev
{{- end -}}

{{/* `llmcache embedder` command line (llmcache/embedder/cli.py). */}}
{{- define "llmcache.embedderArgs" -}}
- embedder
- --listen=0.0.0.0:{{ .Values.embedder.port }}
{{- with .Values.embedder.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end -}}
