{{/* The release's base name, at most 63 characters. */}}
{{- define "fg.fullname" -}}
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

{{/* Name of one component's objects: "<fullname>-frontier", "<fullname>-frontlas". */}}
{{- define "fg.name" -}}
{{- printf "%s-%s" (include "fg.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object of a component carries. */}}
{{- define "fg.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: frontier-gevent
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "fg.selector" . }}
{{- end -}}

{{/* The labels a component's selectors match. */}}
{{- define "fg.selector" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* An image reference: repository and tag (the chart's appVersion by default). */}}
{{- define "fg.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Where the frontiers reach Frontlas' frontier plane. */}}
{{- define "fg.frontlasPlane" -}}
{{- printf "%s.%s.svc:%d" (include "fg.name" (dict "root" . "component" "frontlas")) .Release.Namespace (int .Values.frontlas.ports.plane) -}}
{{- end -}}

{{/* A listener's "tls" block for its config, from values {enabled, secret, mtls, caSecret}
     (the Secrets are mounted under /etc/frontier/tls/<name>). */}}
{{- define "fg.tlsConfig" -}}
{{- $tls := dict "enable" true "certs" (list (dict "cert" (printf "/etc/frontier/tls/%s/tls.crt" .name) "key" (printf "/etc/frontier/tls/%s/tls.key" .name))) -}}
{{- if .tls.mtls -}}
{{- $_ := set $tls "mtls" true -}}
{{- $_ := set $tls "ca_certs" (list (printf "/etc/frontier/tls/%s-ca/ca.crt" .name)) -}}
{{- end -}}
{{- toJson $tls -}}
{{- end -}}

{{/* volumeMounts and volumes of a listener's TLS Secrets: .mounts true for mounts. */}}
{{- define "fg.tlsVolumes" -}}
{{- range $name, $tls := .listeners }}
{{- if $tls.enabled }}
{{- if $.mounts }}
- name: tls-{{ $name | lower }}
  mountPath: /etc/frontier/tls/{{ $name }}
  readOnly: true
{{- if or $tls.mtls $tls.caSecret }}
- name: tls-{{ $name | lower }}-ca
  mountPath: /etc/frontier/tls/{{ $name }}-ca
  readOnly: true
{{- end }}
{{- else }}
- name: tls-{{ $name | lower }}
  secret:
    secretName: {{ required (printf "a TLS Secret for %s (tls.%s.secret)" $name $name) $tls.secret }}
{{- if or $tls.mtls $tls.caSecret }}
- name: tls-{{ $name | lower }}-ca
  secret:
    secretName: {{ required (printf "a CA Secret for %s (tls.%s.caSecret)" $name $name) $tls.caSecret }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
