package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/gobuild"
)

// TestNodeBuildLinksNeitherHelmNorKustomize keeps the node build small: its packages must
// not include the Helm, kustomize or ORAS libraries the cluster-wide controllers need, which
// would put their code (most of the full binary) into every node's resident memory.
func TestNodeBuildLinksNeitherHelmNorKustomize(t *testing.T) {
	deps, err := gobuild.Deps("k3snet_node")
	require.NoError(t, err)
	require.Contains(t, deps, "github.com/k3snet/k3snet/netpol")
	assert.Empty(t, gobuild.Within(deps, "helm.sh", "sigs.k8s.io/kustomize", "oras.land", "github.com/k3snet/k3snet/packaged"), "the node build links them")
}

// TestControllersBuildLinksNoHelm: `k3snet controllers` runs HelmCharts in K3s's jobs, so
// the controllers' process carries none of the Helm SDK (about half the binary it was).
func TestControllersBuildLinksNoHelm(t *testing.T) {
	deps, err := gobuild.Deps()
	require.NoError(t, err)
	require.Contains(t, deps, "github.com/k3snet/k3snet/packaged/helmjob")
	assert.Empty(t, gobuild.Within(deps, gobuild.HelmTrees()...), "the controllers build links Helm")
}

// TestNodeBuildRefusesControllers runs the node build: `controllers` is refused in one line
// that says which build to use.
func TestNodeBuildRefusesControllers(t *testing.T) {
	cmd := exec.Command(binaryWithTags(t, "k3snet_node"), "controllers")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Equal(t, "k3snet: this k3snet is the node build (-tags k3snet_node): it runs `node` and `uninstall`; `controllers` needs the full build", strings.TrimSpace(string(out)))
}
