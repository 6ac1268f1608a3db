package events

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestRecorderWritesEventsWithItsSource(t *testing.T) {
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	recorder := NewRecorder(ctx, client, corev1.EventSource{Component: "test-controller", Host: "node-1"}, 4)

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "uid-1"}}
	recorder.Event(node, corev1.EventTypeWarning, "SomethingOdd", "the node did something odd")

	var got []corev1.Event
	require.Eventually(t, func() bool {
		list, err := client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		got = list.Items
		return len(got) == 1
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "SomethingOdd", got[0].Reason)
	assert.Equal(t, "node-1", got[0].InvolvedObject.Name)
	assert.Equal(t, corev1.EventSource{Component: "test-controller", Host: "node-1"}, got[0].Source)
}
