package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/controlplane"
)

func TestKubeconfigClientIsNotPacedByClientGoDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	cfg, err := compose.ClientConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443", cfg.Host)
	assert.Equal(t, float32(compose.ClientQPS), cfg.QPS)
	assert.Equal(t, compose.ClientBurst, cfg.Burst)

	_, err = compose.ClientConfig(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "loading --kubeconfig")
}

func TestRegisterNodeTouchesANodeKwokLeftUninitialized(t *testing.T) {
	client := fake.NewClientset()
	// The simulated kubelet reports Ready only once the Node has been touched.
	client.PrependReactor("patch", "nodes", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if p, ok := action.(k8stesting.PatchAction); ok && p.GetSubresource() == "" && strings.Contains(string(p.GetPatch()), kwokNudgeAnnotation) {
			n, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("nodes"), "", "node-a")
			require.NoError(t, err)
			node := n.(*corev1.Node).DeepCopy()
			node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
			require.NoError(t, client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("nodes"), node, ""))
		}
		return false, nil, nil
	})
	cfg := &config{nodeName: "node-a"}
	require.NoError(t, registerNode(t.Context(), client, cfg, 300*time.Millisecond))
	n, err := client.CoreV1().Nodes().Get(t.Context(), "node-a", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, n.Annotations, kwokNudgeAnnotation)
	assert.Equal(t, controlplane.KwokNodeAnnotationValue, n.Annotations[controlplane.KwokNodeAnnotation])
}
