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
