package netpol

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// samePointer says whether two maps or slices are one value in memory.
func samePointer(a, b any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// TestSharedPodFieldsEqualsPodFields: whatever is shared, each copy is PodFields' copy of its
// own pod; pods that differ in any field a key encodes get values of their own.
func TestSharedPodFieldsEqualsPodFields(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	base := serverPod(workloadInput(2, 1, 2, 1, 0).Pods[0])
	variant := func(change func(p *corev1.Pod)) *corev1.Pod {
		p := base.DeepCopy()
		change(p)
		return p
	}
	pods := []*corev1.Pod{
		base,
		variant(func(p *corev1.Pod) {}),
		variant(func(p *corev1.Pod) { p.Labels["tier"] = "db" }),
		variant(func(p *corev1.Pod) { p.Labels["extra"] = "" }),
		// Length prefixes keep these two apart: "a"+"bc" and "ab"+"c".
		variant(func(p *corev1.Pod) { p.Labels = map[string]string{"a": "bc"} }),
		variant(func(p *corev1.Pod) { p.Labels = map[string]string{"ab": "c"} }),
		variant(func(p *corev1.Pod) { p.Labels = nil }),
		variant(func(p *corev1.Pod) { p.Labels = map[string]string{} }),
		variant(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 8081 }),
		variant(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = corev1.ProtocolUDP }),
		variant(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostPort = 80 }),
		variant(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].HostIP = "127.0.0.1" }),
		variant(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[1].Name = "stats" }),
		variant(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "d" }),
		variant(func(p *corev1.Pod) { p.Spec.Containers[0].RestartPolicy = &always }),
		variant(func(p *corev1.Pod) { p.Spec.Containers = nil }),
		variant(func(p *corev1.Pod) { p.Spec.InitContainers = nil }),
		variant(func(p *corev1.Pod) { p.Spec.InitContainers[1].Ports[0].ContainerPort = 15002 }),
	}
	share := SharedPodFields()
	for round := range 2 {
		for i, pod := range pods {
			got := share(pod)
			require.Equal(t, PodFields(pod), got, "round %d, pod %d", round, i)
			require.Equal(t, got, share(got), "idempotent")
		}
	}
}

// TestSharedPodFieldsShares: replicas get one labels map and one container list between them.
func TestSharedPodFieldsShares(t *testing.T) {
	share := SharedPodFields()
	in := workloadInput(2, 1, 40, 20, 0)
	first := share(serverPod(in.Pods[0]))
	replica := share(serverPod(in.Pods[20])) // pod-20: the labels of pod-0, on another node
	assert.Equal(t, first.Labels, replica.Labels)
	assert.True(t, samePointer(first.Labels, replica.Labels), "labels shared")
	assert.True(t, samePointer(first.Spec.Containers, replica.Spec.Containers), "containers shared")
	assert.True(t, samePointer(first.Spec.InitContainers, replica.Spec.InitContainers), "sidecars shared")
	other := share(serverPod(in.Pods[1]))
	assert.False(t, samePointer(first.Labels, other.Labels), "other labels, another map")
	assert.NotEqual(t, first.Labels, other.Labels)
}

// TestSharedPodFieldsBounded: pods whose labels are all distinct, or too long to be worth a
// key, leave the table no larger than its bound.
func TestSharedPodFieldsBounded(t *testing.T) {
	s := newPodFieldsSharer()
	pod := workloadInput(2, 1, 2, 1, 0).Pods[0]
	for i := range 3 * maxSharedValues {
		p := pod.DeepCopy()
		p.Labels = map[string]string{"statefulset.kubernetes.io/pod-name": fmt.Sprintf("web-%d", i)}
		got := s.podFields(p)
		require.Equal(t, p.Labels, got.Labels)
		require.LessOrEqual(t, len(s.labels), maxSharedValues)
	}
	s = newPodFieldsSharer()
	long := pod.DeepCopy()
	long.Labels = map[string]string{"k": strings.Repeat("v", maxSharedKeyBytes)}
	require.Equal(t, long.Labels, s.podFields(long).Labels)
	assert.Empty(t, s.labels, "a key over maxSharedKeyBytes is not held")
}

// TestSharedPodFieldsConcurrent: one transform called from many goroutines (run with -race).
func TestSharedPodFieldsConcurrent(t *testing.T) {
	share := SharedPodFields()
	in := workloadInput(4, 3, 200, 50, 0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, pod := range in.Pods {
				assert.Equal(t, PodFields(pod), share(pod))
			}
		})
	}
	wg.Wait()
}
