package deploy_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/k3snet/k3snet/internal/compose"
)

// TestSecurityDocNamesEveryRoleAndListener keeps docs/security.md in step with the base: every
// ClusterRole and Role it installs (and the uninstall grant the controllers make), each
// workload's metrics port and the capabilities the node pods add are named in the review
// list, so a new role, port or capability cannot ship without its entry.
func TestSecurityDocNamesEveryRoleAndListener(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "security.md"))
	require.NoError(t, err)
	text := string(doc)
	mentions := func(what, s string) {
		t.Helper()
		assert.True(t, strings.Contains(text, s), "docs/security.md does not mention %s %s", what, s)
	}

	var base rendered
	for _, f := range []string{"rbac.yaml", "controllers.yaml", "node.yaml"} {
		data, err := os.ReadFile(filepath.Join("base", f))
		require.NoError(t, err)
		base = append(base, decode(t, data)...)
	}
	mentions("the uninstall grant", "`"+compose.UninstallGrantName+"`")
	var roles int
	for _, obj := range base {
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			roles++
			mentions("ClusterRole", "`"+o.Name+"`")
		case *rbacv1.Role:
			roles++
			mentions("Role", "`"+o.Name+"`")
		case *appsv1.Deployment, *appsv1.DaemonSet:
			c := container(t, podSpecOf(o))
			mentions(key(obj)+" metrics port", ":"+strconv.Itoa(int(metricsPort(t, c))))
			if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil {
				for _, capability := range sc.Capabilities.Add {
					mentions(key(obj)+" capability", string(capability))
				}
			}
		}
	}
	assert.NotZero(t, roles, "base/rbac.yaml holds the roles")
}

// podSpecOf returns the pod template's spec of a Deployment or a DaemonSet.
func podSpecOf(obj any) corev1.PodSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		return o.Spec.Template.Spec
	}
	return corev1.PodSpec{}
}
