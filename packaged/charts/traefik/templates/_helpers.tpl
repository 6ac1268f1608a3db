{{/* traefik.labels: the labels every object of the release carries. */}}
{{- define "traefik.labels" -}}
app.kubernetes.io/name: traefik
app.kubernetes.io/instance: {{ .Release.Name }}-{{ .Release.Namespace }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* traefik.selector: the labels the Service and the Deployment select on. */}}
{{- define "traefik.selector" -}}
app.kubernetes.io/name: traefik
app.kubernetes.io/instance: {{ .Release.Name }}-{{ .Release.Namespace }}
{{- end }}

{{/* traefik.image: the image, prefixed with the system default registry when set. */}}
{{- define "traefik.image" -}}
{{- with .Values.global.systemDefaultRegistry }}{{ . }}/{{ end }}{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}

{{/* traefik.exposed: "true" when a port's expose is true, or (newer chart form) expose.default is true. */}}
{{- define "traefik.exposed" -}}
{{- if kindIs "map" .expose }}{{ if .expose.default }}true{{ end }}{{ else if .expose }}true{{ end }}
{{- end }}
