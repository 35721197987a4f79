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
