{{- define "multi-casskop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "multi-casskop.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "multi-casskop.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "multi-casskop.serviceAccountName" -}}
{{- default (include "multi-casskop.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- /*
Non-empty when the chart installs and upgrades the MultiCasskop CRD: crds.install, unless
Multi-CassKop's createCustomResource says false (either value set to false turns it off).
*/ -}}
{{- define "multi-casskop.installCRDs" -}}
{{- if and .Values.crds.install (ne (toString .Values.createCustomResource) "false") -}}
true
{{- end -}}
{{- end -}}
