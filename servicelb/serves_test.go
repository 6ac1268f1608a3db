package servicelb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestServes(t *testing.T) {
	withClass := func(c string) svcTweak {
		return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c }
	}
	tests := []struct {
		name  string
		svc   *corev1.Service
		class string
		want  bool
	}{
		{name: "an unclassed LoadBalancer Service is served", svc: makeService(), want: true},
		{name: "an unclassed LoadBalancer Service is served when a class is configured too", svc: makeService(), class: "k3snet.io/servicelb", want: true},
		{name: "a Service of another class is not served", svc: makeService(withClass("metallb.io/metallb")), want: false},
		{name: "a Service of another class is not served when a class is configured", svc: makeService(withClass("metallb.io/metallb")), class: "k3snet.io/servicelb", want: false},
		{name: "a Service of the configured class is served", svc: makeService(withClass("k3snet.io/servicelb")), class: "k3snet.io/servicelb", want: true},
		{name: "an empty class reads as unset", svc: makeService(withClass("")), want: true},
		{name: "a NodePort Service is not served", svc: makeService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }), want: false},
		{name: "a ClusterIP Service is not served", svc: makeService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }), want: false},
		{name: "no Service is not served", svc: nil, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, serves(tt.svc, tt.class))
		})
	}
}
