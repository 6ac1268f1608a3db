package podspec

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestServingContainers(t *testing.T) {
	always, onFailure := corev1.ContainerRestartPolicyAlways, corev1.ContainerRestartPolicy("OnFailure")
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "setup"},
			{Name: "proxy", RestartPolicy: &always},
			{Name: "odd", RestartPolicy: &onFailure},
		},
		Containers: []corev1.Container{{Name: "app"}, {Name: "metrics"}},
	}}
	var names []string
	for c := range ServingContainers(pod) {
		names = append(names, c.Name)
	}
	assert.Equal(t, []string{"proxy", "app", "metrics"}, names)

	// Stopping early stops the walk.
	var first []string
	for c := range ServingContainers(pod) {
		first = append(first, c.Name)
		break
	}
	assert.Equal(t, []string{"proxy"}, first)
	assert.Empty(t, slices.Collect(ServingContainers(&corev1.Pod{})))
}
