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

{{/* traefik.image: the image; image.registry, else the system default registry, prefixes the
repository, and the tag defaults to the chart's appVersion. */}}
{{- define "traefik.image" -}}
{{- with .Values.image.registry | default (.Values.global).systemDefaultRegistry }}{{ . }}/{{ end }}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* traefik.exposed: "true" when a port's expose is true, or (newer chart form) expose.default is true. */}}
{{- define "traefik.exposed" -}}
{{- if kindIs "map" .expose }}{{ if .expose.default }}true{{ end }}{{ else if .expose }}true{{ end }}
{{- end }}

{{/* traefik.podAnnotations: podAnnotations merged with the official chart's deployment.podAnnotations (which wins). */}}
{{- define "traefik.podAnnotations" -}}
{{- $merged := mergeOverwrite (dict) (.Values.podAnnotations | default dict) (.Values.deployment.podAnnotations | default dict) }}
{{- with $merged }}{{ toYaml . }}{{ end }}
{{- end }}

{{/* traefik.redirection: the redirection of entry point $cfg as {to, scheme, permanent, priority}:
redirections.entryPoint, or the older redirectTo (a port name, or {port, priority}), which
always redirects to https. Rendered as YAML; empty when there is none. */}}
{{- define "traefik.redirection" -}}
{{- if (.redirections).entryPoint }}
{{- toYaml .redirections.entryPoint }}
{{- else if .redirectTo }}
{{- $r := dict "scheme" "https" }}
{{- if kindIs "map" .redirectTo }}
{{- $_ := set $r "to" .redirectTo.port }}
{{- with .redirectTo.priority }}{{ $_ := set $r "priority" . }}{{ end }}
{{- else }}
{{- $_ := set $r "to" .redirectTo }}
{{- end }}
{{- toYaml $r }}
{{- end }}
{{- end }}

{{/* traefik.entryPointArgs: the per-entry-point arguments beyond the address: HTTP redirection
(to the target port's exposedPort, as clients reach it through the Service), TLS, forwarded
headers and PROXY protocol. */}}
{{- define "traefik.entryPointArgs" -}}
{{- $ports := .Values.ports }}
{{- range $name, $cfg := $ports }}
{{- if $cfg }}
{{- with include "traefik.redirection" $cfg | fromYaml }}
{{- $to := .to | toString }}
{{- if not (hasPrefix ":" $to) }}
{{- $target := index $ports $to }}
{{- if not $target }}
{{- fail (printf "ports.%s redirects to %q, which is not a port" $name $to) }}
{{- end }}
{{- $to = printf ":%v" ($target.exposedPort | default $target.port) }}
{{- end }}
- "--entryPoints.{{ $name }}.http.redirections.entryPoint.to={{ $to }}"
{{- with .scheme }}
- "--entryPoints.{{ $name }}.http.redirections.entryPoint.scheme={{ . }}"
{{- end }}
{{- if hasKey . "permanent" }}
- "--entryPoints.{{ $name }}.http.redirections.entryPoint.permanent={{ .permanent }}"
{{- end }}
{{- with .priority }}
- "--entryPoints.{{ $name }}.http.redirections.entryPoint.priority={{ . }}"
{{- end }}
{{- end }}
{{- if ($cfg.tls).enabled }}
- "--entryPoints.{{ $name }}.http.tls=true"
{{- with $cfg.tls.options }}
- "--entryPoints.{{ $name }}.http.tls.options={{ . }}"
{{- end }}
{{- with $cfg.tls.certResolver }}
- "--entryPoints.{{ $name }}.http.tls.certResolver={{ . }}"
{{- end }}
{{- end }}
{{- range $key := list "forwardedHeaders" "proxyProtocol" }}
{{- with index $cfg $key }}
{{- with .trustedIPs }}
- "--entryPoints.{{ $name }}.{{ $key }}.trustedIPs={{ join "," . }}"
{{- end }}
{{- if .insecure }}
- "--entryPoints.{{ $name }}.{{ $key }}.insecure"
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
