package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/clustercidr"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/netpol"
	"github.com/k3snet/k3snet/packaged"
	"github.com/k3snet/k3snet/servicelb"
)

// checkedIn is deploy/base/rbac.yaml as the repository holds it.
func checkedIn(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "base", "rbac.yaml"))
	require.NoError(t, err)
	return data
}

func TestRBACFileIsGenerated(t *testing.T) {
	want, err := render(objects())
	require.NoError(t, err)
	assert.Equal(t, string(want), string(checkedIn(t)), "deploy/base/rbac.yaml differs from the Go roles: run go generate ./deploy/...")
}

func TestWriteWritesTheRendering(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rbac.yaml")
	require.NoError(t, write(p))
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	want, err := render(objects())
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// TestEveryPackageRoleIsBound reads the checked-in file back: each package's ClusterRole()
// is there with its rules, bound to the ServiceAccount that runs the package.
func TestEveryPackageRoleIsBound(t *testing.T) {
	roles := map[string]*rbacv1.ClusterRole{}
	bindings := map[string]*rbacv1.ClusterRoleBinding{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(checkedIn(t))))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		require.NoError(t, err)
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			roles[o.Name] = o
		case *rbacv1.ClusterRoleBinding:
			bindings[o.Name] = o
		}
	}

	tests := []struct {
		name    string
		role    *rbacv1.ClusterRole
		holders []string
	}{
		{name: "the stub runs in the controllers", role: ccmstub.ClusterRole(), holders: []string{controllersAccount}},
		{name: "each node annotates its Node's addresses, with no more of the stub's rights", role: compose.NodeAnnotationsClusterRole(), holders: []string{nodeAccount}},
		{name: "ClusterCIDR allocates in the controllers", role: clustercidr.ClusterRole(), holders: []string{controllersAccount}},
		{name: "NetworkPolicy runs on each node", role: netpol.ClusterRole(), holders: []string{nodeAccount}},
		{name: "the deploy and Helm controllers run in the controllers", role: packaged.ClusterRole(), holders: []string{controllersAccount}},
		{name: "ServiceLB runs in the controllers", role: servicelb.ClusterRole(), holders: []string{controllersAccount}},
		{name: "the controllers uninstall", role: compose.UninstallClusterRole(), holders: []string{controllersAccount}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := roles[tt.role.Name]
			require.True(t, ok, "ClusterRole %s", tt.role.Name)
			assert.Equal(t, tt.role.Rules, got.Rules)
			b, ok := bindings[tt.role.Name]
			require.True(t, ok, "ClusterRoleBinding %s", tt.role.Name)
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: tt.role.Name}, b.RoleRef)
			assert.Equal(t, subjects(tt.holders...), b.Subjects)
		})
	}
	assert.Len(t, roles, len(tests), "no other ClusterRole")
}
