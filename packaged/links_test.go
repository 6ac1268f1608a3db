package packaged

import (
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
	require.Empty(t, gobuild.Within(deps, gobuild.HelmTrees()...), "packaged links Helm")
}
