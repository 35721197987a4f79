{{- define "tif.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tif.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tif.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tif.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tif.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tif.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tif.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/*
The five services: one Deployment each. `values` names their block in values.yaml; `http` is the port of a public
HTTP listener (probed there), `metrics` the small /metrics /healthz /readyz listener of METRICS_PORT.
*/}}
{{- define "tif.components" -}}
gateway: { values: gateway, http: 8080, metrics: 0, ingress: true }
registry-proxy: { values: registryProxy, http: 8081, metrics: 9090, ingress: true }
schematic-store: { values: schematicStore, http: 0, metrics: 9090, ingress: false }
build-worker: { values: buildWorker, http: 0, metrics: 9090, ingress: false }
signing: { values: signing, http: 0, metrics: 9090, ingress: false }
{{- end -}}

{{- define "tif.redisSecretName" -}}
{{- if .Values.redis.internal.enabled -}}{{ include "tif.fullname" . }}-redis{{- else -}}{{ .Values.redis.existingSecret }}{{- end -}}
{{- end -}}

{{- define "tif.redisPasswordKey" -}}
{{- if .Values.redis.internal.enabled -}}password{{- else -}}{{ .Values.redis.existingSecretPasswordKey }}{{- end -}}
{{- end -}}

{{- define "tif.hasRedisPassword" -}}
{{- if or .Values.redis.internal.enabled .Values.redis.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* REDIS_URL; $(REDIS_PASSWORD) is expanded by the kubelet from the env entry before it. */}}
{{- define "tif.redisUrl" -}}
{{- $auth := ternary ":$(REDIS_PASSWORD)@" "" (eq (include "tif.hasRedisPassword" .) "true") -}}
{{- if .Values.redis.internal.enabled -}}
redis://{{ $auth }}{{ include "tif.fullname" . }}-redis:6379
{{- else if .Values.redis.sentinel.enabled -}}
redis+sentinel://{{ $auth }}{{ join "," .Values.redis.sentinel.hosts }}/{{ .Values.redis.sentinel.masterName }}
{{- else -}}
{{- $u := urlParse (required "redis.url is required when redis.internal.enabled is false (or use redis.sentinel)" .Values.redis.url) -}}
{{ $u.scheme }}://{{ $auth }}{{ $u.host }}{{ $u.path }}
{{- end -}}
{{- end -}}

{{- define "tif.signingSecretName" -}}
{{- .Values.signing.existingSecret | default (printf "%s-signing-key" (include "tif.fullname" .)) -}}
{{- end -}}

{{- define "tif.componentSelector" -}}
{{ include "tif.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Settings the chart sets on the Deployments of the services that read them, by component: env name → the value it
comes from (`from`, for messages) and its rendered `value`. Per Deployment, not in the shared ConfigMap: a change
rolls only those pods. FACTORY_WEBHOOKS (secret) is added to the gateway by deployments.yaml.
*/}}
{{- define "tif.serviceEnv" -}}
{{- $b := .Values.builds -}}
{{- $w := .Values.webhooks -}}
gateway:
  FACTORY_BUILD_RETENTION: { from: builds.retention, value: {{ $b.retention | quote }} }
  FACTORY_MAX_BUILDS_PER_REQUEST: { from: builds.maxPerRequest, value: {{ $b.maxPerRequest | quote }} }
  FACTORY_MAX_BUILD_STREAMS: { from: builds.maxStreams, value: {{ $b.maxStreams | quote }} }
  FACTORY_WEBHOOK_ALLOW_PRIVATE: { from: webhooks.allowPrivateTargets, value: {{ $w.allowPrivateTargets | quote }} }
  FACTORY_WEBHOOK_TIMEOUT: { from: webhooks.timeout, value: {{ $w.timeout | quote }} }
  FACTORY_WEBHOOK_RETRY_DELAY: { from: webhooks.retryDelay, value: {{ $w.retryDelay | quote }} }
build-worker:
  FACTORY_BUILD_RETENTION: { from: builds.retention, value: {{ $b.retention | quote }} }
{{- end -}}

{{/* The Secret holding the global webhooks (FACTORY_WEBHOOKS) and its key; empty name: none configured. */}}
{{- define "tif.webhooksSecretName" -}}
{{- if .Values.webhooks.inline -}}{{ include "tif.fullname" . }}-webhooks{{- else -}}{{ .Values.webhooks.existingSecret }}{{- end -}}
{{- end -}}

{{- define "tif.webhooksSecretKey" -}}
{{- if .Values.webhooks.inline -}}webhooks.json{{- else -}}{{ .Values.webhooks.existingSecretKey }}{{- end -}}
{{- end -}}

{{/*
Values the schema cannot cross-check. A `config` entry for a setting the chart sets per Deployment would be silently
overridden there (env beats envFrom), so it is refused with the value to use instead.
*/}}
{{- define "tif.checkValues" -}}
{{- if and .Values.webhooks.inline .Values.webhooks.existingSecret -}}
{{- fail "webhooks: set one of webhooks.existingSecret and webhooks.inline" -}}
{{- end -}}
{{- $sb := .Values.signing.secureBoot -}}
{{- if and (or $sb.platformKey $sb.keyExchangeKey) (not $sb.existingSecret) -}}
{{- fail "signing.secureBoot: platformKey and keyExchangeKey name keys in signing.secureBoot.existingSecret; set it too" -}}
{{- end -}}
{{- $dedicated := dict "FACTORY_WEBHOOKS" "webhooks.existingSecret or webhooks.inline" "FACTORY_COSIGN_KEY_FILE" "signing.existingSecret" -}}
{{- range $name := list "SIGNING_KEY_FILE" "SIGNING_CERT_FILE" "PCR_KEY_FILE" -}}
{{- $_ := set $dedicated (printf "FACTORY_SECUREBOOT_%s" $name) "signing.secureBoot.existingSecret" -}}
{{- end -}}
{{- $_ := set $dedicated "FACTORY_SECUREBOOT_PK_KEY_FILE" "signing.secureBoot.platformKey" -}}
{{- $_ := set $dedicated "FACTORY_SECUREBOOT_PK_CERT_FILE" "signing.secureBoot.platformKey" -}}
{{- $_ := set $dedicated "FACTORY_SECUREBOOT_KEK_KEY_FILE" "signing.secureBoot.keyExchangeKey" -}}
{{- $_ := set $dedicated "FACTORY_SECUREBOOT_KEK_CERT_FILE" "signing.secureBoot.keyExchangeKey" -}}
{{- range $component, $settings := include "tif.serviceEnv" . | fromYaml -}}
{{- range $name, $s := $settings -}}{{- $_ := set $dedicated $name $s.from -}}{{- end -}}
{{- end -}}
{{- range $name, $from := $dedicated -}}
{{- if hasKey $.Values.config $name -}}
{{- fail (printf "config.%s: set it with %s instead (the chart sets it on the Deployments that read it)" $name $from) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The gateway's webhook egress ports: networkPolicy.webhookEgress.ports plus the explicit ports of webhooks.inline
URLs, as a JSON array; empty when webhookEgress.ports is empty (every port).
*/}}
{{- define "tif.webhookEgressPorts" -}}
{{- $ports := list -}}
{{- if .Values.networkPolicy.webhookEgress.ports -}}
{{- range .Values.networkPolicy.webhookEgress.ports -}}{{- $ports = append $ports (int .) -}}{{- end -}}
{{- range .Values.webhooks.inline -}}
{{- with regexFind ":[0-9]+$" (urlParse .url).host -}}{{- $ports = append $ports (trimPrefix ":" . | int) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}
