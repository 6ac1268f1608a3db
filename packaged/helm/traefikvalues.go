package helm

import (
	"fmt"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
)

// annotationEmbeddedChart in a chart's Chart.yaml marks one of k3snet's own charts; its value
// is the chart's name.
const annotationEmbeddedChart = "packaged.k3snet.io/chart"

// embeddedTraefikChart is the value of annotationEmbeddedChart in k3snet's Traefik chart.
const embeddedTraefikChart = "traefik"

// maxUnsupportedKeys bounds how many keys an UnsupportedValues Event names,
// maxUnsupportedKeyLen each key's length and maxUnsupportedKeysLen their total, so a values
// document of any size gives an Event message under the 1 KiB Events are meant to hold.
const (
	maxUnsupportedKeys    = 20
	maxUnsupportedKeyLen  = 100
	maxUnsupportedKeysLen = 800
)

// traefikSupportedKeys are the values keys k3snet's Traefik chart understands, with the
// meaning the official Traefik chart gives them, as dotted paths; "*" stands for any one
// key (a port name). A value at a listed path may be of any shape (a map such as
// service.spec or resources is taken whole) unless longer listed paths go below it, as
// ports.*.expose (a bool, or the newer {default: bool}).
func traefikSupportedKeys() []string {
	return []string{
		"global.systemDefaultRegistry",
		"image.registry", "image.repository", "image.tag", "image.pullPolicy",
		"deployment.kind", "deployment.replicas", "deployment.podAnnotations",
		"podAnnotations", "hostNetwork", "env", "envFrom", "volumes", "resources",
		"globalArguments", "additionalArguments",
		"tolerations", "nodeSelector", "priorityClassName",
		"api.dashboard",
		"ports.*.port", "ports.*.exposedPort", "ports.*.protocol", "ports.*.nodePort",
		"ports.*.expose", "ports.*.expose.default",
		"ports.*.redirections.entryPoint.to", "ports.*.redirections.entryPoint.scheme",
		"ports.*.redirections.entryPoint.permanent", "ports.*.redirections.entryPoint.priority",
		"ports.*.redirectTo", "ports.*.redirectTo.port", "ports.*.redirectTo.priority",
		"ports.*.tls.enabled", "ports.*.tls.options", "ports.*.tls.certResolver",
		"ports.*.forwardedHeaders.trustedIPs", "ports.*.forwardedHeaders.insecure",
		"ports.*.proxyProtocol.trustedIPs", "ports.*.proxyProtocol.insecure",
		"service.enabled", "service.type", "service.annotations", "service.labels",
		"service.spec", "service.ipFamilyPolicy",
		"providers.kubernetesCRD.enabled", "providers.kubernetesIngress.enabled",
		"providers.kubernetesIngress.publishedService.enabled", "providers.kubernetesGateway.enabled",
		"ingressRoute.dashboard.enabled", "ingressRoute.dashboard.matchRule",
		"ingressRoute.dashboard.entryPoints", "ingressRoute.dashboard.annotations",
		"ingressRoute.dashboard.labels",
		"logs.general.level", "logs.access.enabled",
		"ingressClass.enabled", "ingressClass.isDefaultClass", "ingressClass.name",
	}
}

// isEmbeddedTraefik reports whether a release's chart is k3snet's own Traefik chart: inline
// chartContent (as the packaged traefik.yaml installs it) whose Chart.yaml carries
// annotationEmbeddedChart. A chart from a repository, URL or registry, the official
// Traefik chart included, is never checked.
func isEmbeddedTraefik(src chartSource, ch *chart.Chart) bool {
	return src.kind == sourceInline && ch != nil && ch.Metadata != nil &&
		ch.Metadata.Name == "traefik" && ch.Metadata.Annotations[annotationEmbeddedChart] == embeddedTraefikChart
}

// UnsupportedTraefikValues returns the dotted paths of the keys in values that k3snet's
// Traefik chart does not understand (traefikSupportedKeys), sorted. A key whose value is
// null is left out: Helm reads null as "remove the default", which changes nothing for a
// key the chart does not have. Below an unsupported key nothing more is reported.
func UnsupportedTraefikValues(values map[string]any) []string {
	var patterns [][]string
	for _, k := range traefikSupportedKeys() {
		patterns = append(patterns, strings.Split(k, "."))
	}
	var out []string
	var walk func(m map[string]any, path []string)
	walk = func(m map[string]any, path []string) {
		for k, v := range m {
			if v == nil {
				continue
			}
			p := append(slices.Clone(path), k)
			exact, deeper := matchKeyPatterns(patterns, p)
			child, isMap := v.(map[string]any)
			switch {
			case isMap && deeper:
				walk(child, p)
			case exact:
			default:
				out = append(out, strings.Join(p, "."))
			}
		}
	}
	walk(values, nil)
	slices.Sort(out)
	return out
}

// matchKeyPatterns reports whether a pattern matches path exactly, and whether a longer
// pattern goes below it.
func matchKeyPatterns(patterns [][]string, path []string) (exact, deeper bool) {
	for _, pat := range patterns {
		if len(pat) < len(path) || !segmentsMatch(pat[:len(path)], path) {
			continue
		}
		if len(pat) == len(path) {
			exact = true
		} else {
			deeper = true
		}
	}
	return exact, deeper
}

// segmentsMatch compares a pattern's segments with a path's, "*" matching any key.
func segmentsMatch(pat, path []string) bool {
	for i := range pat {
		if pat[i] != "*" && pat[i] != path[i] {
			return false
		}
	}
	return true
}

// unsupportedValuesMessage is the UnsupportedValues Event's message naming keys: the first
// ones within maxUnsupportedKeys and maxUnsupportedKeysLen, each cut to
// maxUnsupportedKeyLen, and how many more there are.
func unsupportedValuesMessage(keys []string) string {
	var names []string
	total := 0
	for _, k := range keys {
		if r := []rune(k); len(r) > maxUnsupportedKeyLen {
			k = string(r[:maxUnsupportedKeyLen]) + "..."
		}
		if len(names) == maxUnsupportedKeys || (len(names) > 0 && total+len(k) > maxUnsupportedKeysLen) {
			break
		}
		names = append(names, k)
		total += len(k) + 2
	}
	msg := "k3snet's traefik chart does not support these values, which are ignored: " + strings.Join(names, ", ")
	if more := len(keys) - len(names); more > 0 {
		msg += fmt.Sprintf(" and %d more", more)
	}
	return msg + " (install the official Traefik chart for them)"
}
