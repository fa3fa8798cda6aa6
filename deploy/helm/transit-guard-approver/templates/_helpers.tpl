{{- define "approver.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "approver.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "approver.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "approver.secretName" -}}
{{- .Values.secret.existingSecret | default (include "approver.fullname" .) -}}
{{- end -}}

{{- define "approver.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Whether state lives in Postgres (replicas) rather than SQLite on a volume. */}}
{{- define "approver.postgres" -}}
{{- if .Values.postgres.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* Refuses values that would start a broken or unsafe approver, with the fix. */}}
{{- define "approver.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.postgres.existingSecret) -}}
{{- fail "replicaCount > 1 needs Postgres: set postgres.existingSecret to a Secret holding the database URL (SQLite has one writer)" -}}
{{- end -}}
{{- if lt (int .Values.replicaCount) 1 -}}
{{- fail "replicaCount must be at least 1" -}}
{{- end -}}
{{- if .Values.oidc.issuer -}}
{{- if not .Values.oidc.clientId -}}
{{- fail "oidc.issuer needs oidc.clientId" -}}
{{- end -}}
{{- if not .Values.publicUrl -}}
{{- fail "oidc.issuer needs publicUrl (the redirect URI is publicUrl + /auth/callback)" -}}
{{- end -}}
{{- if not .Values.secret.existingSecret -}}
{{- if not .Values.secret.oidcClientSecret -}}
{{- fail "oidc.issuer needs secret.oidcClientSecret (or secret.existingSecret with the key oidc-client-secret)" -}}
{{- end -}}
{{- if lt (len .Values.secret.sessionSecret) 32 -}}
{{- fail "oidc.issuer needs secret.sessionSecret of at least 32 characters (or secret.existingSecret with the key session-secret)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.secret.webhookSecret (lt (len .Values.secret.webhookSecret) 16) -}}
{{- fail "secret.webhookSecret must be at least 16 characters" -}}
{{- end -}}
{{- if not (kindIs "map" .Values.policies) -}}
{{- fail "policies must be a map (the approver's --policies JSON, as YAML)" -}}
{{- end -}}
{{- end -}}
