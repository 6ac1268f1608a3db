package netpol

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/k3snet/k3snet/netpol/netpoltest"
)

// serverPod dresses a workload pod as the API server returns it: defaults, a service account
// volume, tolerations, statuses, an init container and a sidecar with a named port.
func serverPod(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	always := corev1.ContainerRestartPolicyAlways
	grace := int64(30)
	p.UID, p.ResourceVersion, p.Annotations = types.UID("uid-"+p.Name), "42", map[string]string{"kubectl.kubernetes.io/restartedAt": "now"}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs-uid"}}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		c.Image, c.ImagePullPolicy, c.TerminationMessagePath = "registry.example/app:v1", corev1.PullIfNotPresent, "/dev/termination-log"
		c.Env = []corev1.EnvVar{{Name: "MODE", Value: "prod"}}
		c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
		c.VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: 7000, Protocol: corev1.ProtocolUDP})
	}
	p.Spec.InitContainers = []corev1.Container{
		{Name: "migrate", Image: "registry.example/migrate:v1", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 7070}}},
		{Name: "proxy", Image: "registry.example/proxy:v1", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}}},
	}
	p.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}}
	p.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
	p.Spec.TerminationGracePeriodSeconds, p.Spec.ServiceAccountName, p.Spec.SchedulerName = &grace, "default", "default-scheduler"
	p.Status.HostIP = "192.168.0.2"
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true, Image: "registry.example/app:v1", ContainerID: "containerd://abc"}}
	return p
}

func TestPodFields(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := serverPod(workloadInput(2, 1, 2, 1, 0).Pods[0])
	pod.DeletionTimestamp = &metav1.Time{}
	before := pod.DeepCopy()
	got := PodFields(pod)

	assert.Equal(t, before, pod, "the cached object is not modified")
	assert.Equal(t, got, PodFields(got), "idempotent: a transform may see an object twice")
	assert.Equal(t, metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: "42",
		Labels: pod.Labels, DeletionTimestamp: pod.DeletionTimestamp}, got.ObjectMeta)
	assert.Equal(t, corev1.PodSpec{
		NodeName: pod.Spec.NodeName,
		Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
		}}},
		// The sidecar serves for the pod's lifetime; the one-shot init container never does.
		InitContainers: []corev1.Container{{Name: "proxy", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}}}},
	}, got.Spec)
	assert.Equal(t, corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "192.168.0.2", PodIP: pod.Status.PodIP, PodIPs: pod.Status.PodIPs}, got.Status)

	hostNetwork := pod.DeepCopy()
	hostNetwork.Spec.HostNetwork, hostNetwork.Status.Phase = true, corev1.PodSucceeded
	got = PodFields(hostNetwork)
	assert.True(t, got.Spec.HostNetwork)
	assert.Equal(t, corev1.PodSucceeded, got.Status.Phase)
}

// TestPodFieldsCompileTheSame: the rules compiled from PodFields' copies are those compiled
// from the whole pods, and handlePodUpdate asks for a sync on the copies exactly when it does
// on the pods.
func TestPodFieldsCompileTheSame(t *testing.T) {
	in := workloadInput(5, 10, 400, 40, 100)
	for i, pod := range in.Pods {
		in.Pods[i] = serverPod(pod)
	}
	// A policy by a sidecar's named port, one by a one-shot init container's (which selects nothing).
	in.Policies = append(in.Policies, policyByNamedPort("ns-0", "by-sidecar-port", "proxy"), policyByNamedPort("ns-1", "by-init-port", "admin"))
	trimmed := in
	trimmed.Pods = make([]*corev1.Pod, len(in.Pods))
	for i, pod := range in.Pods {
		trimmed.Pods[i] = PodFields(pod)
	}
	want, err := Compile(in)
	require.NoError(t, err)
	got, err := Compile(trimmed)
	require.NoError(t, err)
	require.Equal(t, want, got)

	signals := func(old, pod *corev1.Pod) bool {
		c := &Controller{runner: newSyncRunner(nil, 0, 0)}
		c.handlePodUpdate(old, pod)
		return len(c.runner.pending) == 1
	}
	relabelled, moved, rehosted, resynced := in.Pods[0].DeepCopy(), in.Pods[0].DeepCopy(), in.Pods[0].DeepCopy(), in.Pods[0].DeepCopy()
	relabelled.Labels["tier"] = "other"
	rehosted.Status.HostIP = "192.168.0.3"
	moved.Status.PodIPs, moved.Status.PodIP = []corev1.PodIP{{IP: "10.42.0.200"}}, "10.42.0.200"
	resynced.ResourceVersion, resynced.Status.Conditions = "43", nil
	for _, next := range []*corev1.Pod{relabelled, moved, rehosted, resynced} {
		assert.Equal(t, signals(in.Pods[0], next), signals(PodFields(in.Pods[0]), PodFields(next)))
	}
}

// policyByNamedPort lets in, to every pod of ns, traffic to the container port called port.
func policyByNamedPort(ns, name, port string) *networkingv1.NetworkPolicy {
	return netpoltest.Policy(ns, name, netpoltest.PolicyTypes(netpoltest.TypeIngress),
		netpoltest.IngressRules(netpoltest.From(nil, netpoltest.NamedPort(port))))
}
