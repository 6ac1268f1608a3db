package netpol

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodFields returns a copy of pod with only what NetworkPolicy enforcement reads: its name,
// namespace, UID, resourceVersion, labels and deletion timestamp; spec.nodeName,
// spec.hostNetwork and the named ports of the containers that serve (sidecar init containers
// included); status.phase and the addresses. A process in which
// the controller is the only reader of the Pod cache (`k3snet node`, a K3s agent) keeps these
// copies instead of whole Pods, about a fifth of their size: container images, env,
// volumes, tolerations and container statuses are never read. Idempotent, and pod is not
// modified.
func PodFields(pod *corev1.Pod) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			Labels:            pod.Labels,
			DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{
			NodeName:       pod.Spec.NodeName,
			HostNetwork:    pod.Spec.HostNetwork,
			InitContainers: servingPorts(pod.Spec.InitContainers, true),
			Containers:     servingPorts(pod.Spec.Containers, false),
		},
		Status: corev1.PodStatus{
			Phase:  pod.Status.Phase,
			HostIP: pod.Status.HostIP,
			PodIP:  pod.Status.PodIP,
			PodIPs: pod.Status.PodIPs,
		},
	}
}

// servingPorts keeps the containers with named ports, with only their names, named ports and
// restart policies; of init containers only the sidecars (restartPolicy Always), which serve
// for the pod's lifetime.
func servingPorts(containers []corev1.Container, init bool) []corev1.Container {
	var out []corev1.Container
	for _, c := range containers {
		if init && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
			continue
		}
		var named []corev1.ContainerPort
		for _, p := range c.Ports {
			if p.Name != "" {
				named = append(named, p)
			}
		}
		if len(named) > 0 {
			out = append(out, corev1.Container{Name: c.Name, Ports: named, RestartPolicy: c.RestartPolicy})
		}
	}
	return out
}
