package gobuild

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTagsPutTheNoPluginsTagFirst(t *testing.T) {
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, NoGoPluginsTag},
		{[]string{""}, NoGoPluginsTag},
		{[]string{"k3snet_node"}, NoGoPluginsTag + ",k3snet_node"},
		{[]string{"a", NoGoPluginsTag, "a", "b"}, NoGoPluginsTag + ",a,b"},
	} {
		assert.Equal(t, tc.want, Tags(tc.extra...), "%q", tc.extra)
	}
}

func TestCommandBuildsWithTheTags(t *testing.T) {
	cmd := Command("/tmp/out", "./examples/k3slike", "k3snet_node")
	assert.Equal(t, []string{"go", "build", "-tags", NoGoPluginsTag + ",k3snet_node", "-o", "/tmp/out", "./examples/k3slike"}, cmd.Args)
}

func TestWithin(t *testing.T) {
	deps := []string{"helm.sh/helm/v3/pkg/chart", "github.com/k3snet/k3snet/packaged/helm", "github.com/k3snet/k3snet/packaged/helm/cmd/klipper-helm",
		"github.com/k3snet/k3snet/packaged/helmchart", "github.com/k3snet/k3snet/packaged/helmjob", "helm.shx/other"}
	assert.Equal(t, []string{"helm.sh/helm/v3/pkg/chart", "github.com/k3snet/k3snet/packaged/helm", "github.com/k3snet/k3snet/packaged/helm/cmd/klipper-helm"},
		Within(deps, HelmTrees()...))
	assert.Empty(t, Within(deps[3:], HelmTrees()...))
}
