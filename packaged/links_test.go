package packaged

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/gobuild"
)

// TestLinksNoHelm: the deploy controller links no Helm, so a process that runs HelmCharts in
// K3s's jobs (package helmjob) carries none of the Helm SDK's code or init-time heap.
func TestLinksNoHelm(t *testing.T) {
	deps, err := gobuild.Deps()
	require.NoError(t, err)
	require.Contains(t, deps, "github.com/k3snet/k3snet/packaged/helmchart")
	for _, dep := range deps {
		require.False(t, strings.HasPrefix(dep, "helm.sh/") || dep == "github.com/k3snet/k3snet/packaged/helm", "packaged links %s", dep)
	}
}
