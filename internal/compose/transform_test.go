package compose

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestDropManagedFields(t *testing.T) {
	withFields := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "a"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}},
			Spec: corev1.PodSpec{NodeName: "n"}}
	}
	tests := []struct {
		name string
		in   any
		want any
	}{
		{name: "an object's managedFields go and the rest stays", in: withFields(),
			want: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "a"}}, Spec: corev1.PodSpec{NodeName: "n"}}},
		{name: "an object without managedFields is unchanged", in: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}},
			want: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}},
		{name: "a value that is not an object passes through", in: cache.DeletedFinalStateUnknown{Key: "ns/p"},
			want: cache.DeletedFinalStateUnknown{Key: "ns/p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dropManagedFields(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCacheTransform(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "a"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.PodSpec{NodeName: "n", SchedulerName: "default-scheduler"}}
	whole := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "a"}},
		Spec: corev1.PodSpec{NodeName: "n", SchedulerName: "default-scheduler"}}
	nodeNameOnly := func(p *corev1.Pod) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}, Spec: corev1.PodSpec{NodeName: p.Spec.NodeName}}
	}
	trimmed := nodeNameOnly(pod)
	reader := Controller{Name: "reader", PodFields: nodeNameOnly}
	none := Controller{Name: "none", ReadsNoPods: true}
	unsaid := Controller{Name: "unsaid"}
	tests := []struct {
		name        string
		controllers []Controller
		want        *corev1.Pod
	}{
		{name: "the only Pod reader's fields are kept", controllers: []Controller{reader}, want: trimmed},
		{name: "beside controllers that read no Pods", controllers: []Controller{none, reader, none}, want: trimmed},
		{name: "a controller that does not say what it reads keeps Pods whole", controllers: []Controller{reader, unsaid}, want: whole},
		{name: "two Pod readers keep Pods whole", controllers: []Controller{reader, none, reader}, want: whole},
		{name: "no Pod reader: Pods whole", controllers: []Controller{none}, want: whole},
		{name: "no controller at all", want: whole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transform := cacheTransform(tt.controllers)
			got, err := transform(pod.DeepCopy())
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			// Every other object still loses only its managedFields.
			node, err := transform(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", ManagedFields: pod.ManagedFields}})
			require.NoError(t, err)
			assert.Equal(t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}, node)
			tombstone := cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod}
			got, err = transform(tombstone)
			require.NoError(t, err)
			assert.Equal(t, tombstone, got)
		})
	}
}

// TestNetworkPolicyCachesSharedPodFields: where NetworkPolicy is the only Pod reader, the
// cache holds netpol.SharedPodFields' copies, so replicas hold one labels map between them.
func TestNetworkPolicyCachesSharedPodFields(t *testing.T) {
	transform := cacheTransform([]Controller{NetworkPolicyWithNodePorts(nil, "n", nil, NodePortRange{}, nil)})
	replica := func(name string) *corev1.Pod {
		obj, err := transform(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "a"}}})
		require.NoError(t, err)
		return obj.(*corev1.Pod)
	}
	a, b := replica("a"), replica("b")
	b.Labels["app"] = "changed" // never done to a cached object: here it shows the map is a's too
	assert.Equal(t, "changed", a.Labels["app"])
}
