package main

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// registrationLabels are --node-label's labels (key=value, validated with the flags), which
// the kubelet of a K3s node registers its Node with (--node-labels).
func registrationLabels(specs []string) map[string]string {
	out := map[string]string{}
	for _, l := range specs {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	return out
}

// registrationTaints are --node-taint's taints (key[=value]:Effect, validated with the
// flags), which the kubelet of a K3s node registers its Node with (--register-with-taints).
func registrationTaints(specs []string) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range specs {
		kv, effect, _ := strings.Cut(t, ":")
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	return out
}
