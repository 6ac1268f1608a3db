// Package podspec holds rules about a Pod's spec that more than one controller applies.
package podspec

import (
	"iter"

	corev1 "k8s.io/api/core/v1"
)

// ServingContainers yields every container that runs for the pod's whole life, in spec order:
// the sidecars (init containers with restartPolicy Always, Kubernetes' native sidecars) and
// then the containers. Their ports are the pod's ports; ordinary init containers have exited
// before the pod serves anything.
func ServingContainers(pod *corev1.Pod) iter.Seq[*corev1.Container] {
	return func(yield func(*corev1.Container) bool) {
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways && !yield(c) {
				return
			}
		}
		for i := range pod.Spec.Containers {
			if !yield(&pod.Spec.Containers[i]) {
				return
			}
		}
	}
}
