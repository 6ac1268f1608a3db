package packaged

import (
	"context"
	"testing"

	"github.com/k3snet/k3snet/packaged/helm"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
)

// TestStartTwiceIsAnError: each controller runs one set of workers; a new term needs New.
func TestStartTwiceIsAnError(t *testing.T) {
	client := fake.NewClientset()
	type starter interface {
		Start(context.Context, informers.SharedInformerFactory) error
	}
	starts := map[string]func() (starter, error){
		"deploy": func() (starter, error) {
			return New(client, Options{ManifestsDir: t.TempDir(), Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())})
		},
		"helm": func() (starter, error) {
			return helm.New(client, helm.Options{Config: &rest.Config{Host: "https://127.0.0.1:1"}})
		},
	}
	for name, build := range starts {
		t.Run(name, func(t *testing.T) {
			c, err := build()
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // the first Start only has to begin
			_ = c.Start(ctx, informers.NewSharedInformerFactory(client, 0))
			require.ErrorContains(t, c.Start(t.Context(), informers.NewSharedInformerFactory(client, 0)), "Start called twice")
		})
	}
}
