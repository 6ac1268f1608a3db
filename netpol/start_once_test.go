package netpol

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// TestStartTwiceIsAnError: a Controller runs one set of workers; a new term needs New.
func TestStartTwiceIsAnError(t *testing.T) {
	client := fake.NewClientset()
	c, err := New(client, Options{NodeName: "node-1"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the first Start only has to begin
	_ = c.Start(ctx, informers.NewSharedInformerFactory(client, 0))
	require.ErrorContains(t, c.Start(t.Context(), informers.NewSharedInformerFactory(client, 0)), "Start called twice")
}
