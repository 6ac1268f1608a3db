package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docsClusterCIDR is the ClusterCIDR of K3s's documentation, as users copy it.
const docsClusterCIDR = `apiVersion: networking.k8s.io/v1alpha1
kind: ClusterCIDR
metadata:
  name: worker2-cidr
spec:
  nodeSelector:
    nodeSelectorTerms:
    - matchExpressions:
      - key: kubernetes.io/hostname
        operator: In
        values:
        - worker2
  perNodeHostBits: 8
  ipv4: 10.247.0.0/16
`

// TestClusterCIDRV1alpha1WithKubectl applies the docs' networking.k8s.io/v1alpha1 ClusterCIDR
// with the real kubectl against k3slike's embedded control plane: it is stored as the
// networking.x-k8s.io/v1 object, read back as v1alpha1, edited, refused with CEL's message,
// guarded by the v1 resource's RBAC and deleted; a restart registers the server again and a
// restart without --multi-cluster-cidr removes the registration.
func TestClusterCIDRV1alpha1WithKubectl(t *testing.T) {
	if ln, _ := listenForAggregator([]netip.Addr{defaultNodeIP()}); ln == nil {
		t.Skip("needs a non-loopback address on this host for kube-apiserver to reach the v1alpha1 server at")
	} else {
		ln.Close()
	}
	c := newCluster(t, "k3slike-alpha", "192.0.2.51")
	dir := t.TempDir()
	file := filepath.Join(dir, "clustercidr.yaml")
	require.NoError(t, os.WriteFile(file, []byte(docsClusterCIDR), 0o600))
	// A discovery cache of its own per server run: kubectl's would outlive a registration.
	cache := filepath.Join(dir, "cache-1")
	kubectl := func(args ...string) (string, error) {
		return c.try(append([]string{"--cache-dir=" + cache}, args...)...)
	}
	mustKubectl := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		require.NoError(t, err)
		return out
	}

	srv := c.start("--multi-cluster-cidr")
	c.eventually("the ClusterCIDR CRD is installed", func() bool {
		_, err := kubectl("get", "clustercidrs.networking.x-k8s.io", "default-cluster-cidr")
		return err == nil
	})
	assert.Equal(t, "clustercidr.networking.k8s.io/worker2-cidr created\n", mustKubectl("apply", "-f", file))
	list := mustKubectl("get", "clustercidrs")
	t.Logf("kubectl get clustercidrs:\n%s", list)
	assert.Regexp(t, `(?m)^worker2-cidr\s+8\s+10\.247\.0\.0/16\s`, list, "the CRD's printer columns")
	assert.Regexp(t, `(?m)^default-cluster-cidr\s`, list)
	yaml := mustKubectl("get", "clustercidr", "worker2-cidr", "-o", "yaml")
	assert.Contains(t, yaml, "apiVersion: networking.k8s.io/v1alpha1\nkind: ClusterCIDR\n")

	var stored struct {
		APIVersion string `json:"apiVersion"`
		Metadata   struct {
			Labels     map[string]string `json:"labels"`
			Finalizers []string          `json:"finalizers"`
		} `json:"metadata"`
		Spec map[string]any `json:"spec"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustKubectl("get", "clustercidrs.networking.x-k8s.io", "worker2-cidr", "-o", "json")), &stored))
	assert.Equal(t, "networking.x-k8s.io/v1", stored.APIVersion)
	assert.Equal(t, map[string]any{
		"nodeSelector": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{
			map[string]any{"key": "kubernetes.io/hostname", "operator": "In", "values": []any{"worker2"}}}}}},
		"perNodeHostBits": float64(8), "ipv4": "10.247.0.0/16",
	}, stored.Spec, "the v1 object has the docs' spec")

	// An edit re-applied: a label (the spec is immutable).
	labelled := []byte(strings.Replace(docsClusterCIDR, "  name: worker2-cidr\n", "  name: worker2-cidr\n  labels:\n    team: blue\n", 1))
	require.NoError(t, os.WriteFile(file, labelled, 0o600))
	assert.Equal(t, "clustercidr.networking.k8s.io/worker2-cidr configured\n", mustKubectl("apply", "-f", file))
	assert.Equal(t, "blue", c.value("{.metadata.labels.team}", "clustercidrs.networking.x-k8s.io", "worker2-cidr"))
	assert.Equal(t, "clustercidr.networking.k8s.io/worker2-cidr unchanged\n", mustKubectl("apply", "-f", file))

	// CEL validation of the CRD answers, readable, for the v1alpha1 object.
	badFile := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(badFile, []byte(`apiVersion: networking.k8s.io/v1alpha1
kind: ClusterCIDR
metadata:
  name: bad-cidr
spec:
  perNodeHostBits: 8
  ipv4: 10.248.0.1/16
`), 0o600))
	_, err := kubectl("apply", "-f", badFile)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `The ClusterCIDR "bad-cidr" is invalid: spec.ipv4: Invalid value: "10.248.0.1/16": must be an IPv4 CIDR with no host bits set`)

	// RBAC: kube-apiserver checks networking.k8s.io before it relays, the relayed request as
	// the user checks networking.x-k8s.io.
	_, err = kubectl("get", "clustercidrs", "--as=bob")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `User "bob" cannot list resource "clustercidrs" in API group "networking.k8s.io"`)
	mustKubectl("create", "clusterrole", "clustercidr-v1alpha1-reader", "--verb=get,list", "--resource=clustercidrs.networking.k8s.io")
	mustKubectl("create", "clusterrolebinding", "bob-v1alpha1", "--clusterrole=clustercidr-v1alpha1-reader", "--user=bob")
	c.eventually("kube-apiserver lets bob reach the v1alpha1 server, which is refused as bob", func() bool {
		_, err := kubectl("get", "clustercidr", "worker2-cidr", "--as=bob")
		return err != nil && strings.Contains(err.Error(), `cannot get resource "clustercidrs" in API group "networking.x-k8s.io"`)
	})
	_, err = kubectl("get", "clustercidr", "worker2-cidr", "--as=bob")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Error from server (Forbidden): clustercidrs.networking.k8s.io "worker2-cidr" is forbidden`)
	mustKubectl("create", "clusterrole", "clustercidr-reader", "--verb=get,list", "--resource=clustercidrs.networking.x-k8s.io")
	mustKubectl("create", "clusterrolebinding", "bob-v1", "--clusterrole=clustercidr-reader", "--user=bob")
	c.eventually("bob reads the v1alpha1 object with both roles", func() bool {
		out, err := kubectl("get", "clustercidr", "worker2-cidr", "--as=bob", "-o", "jsonpath={.apiVersion}")
		return err == nil && out == "networking.k8s.io/v1alpha1"
	})
	_, err = kubectl("delete", "-f", file, "--as=bob")
	require.Error(t, err, "bob may not delete")
	assert.Contains(t, err.Error(), "forbidden")
	srv.stop(t)

	// A restart: a new port and certificate, registered again.
	cache = filepath.Join(dir, "cache-2")
	srv = c.start("--multi-cluster-cidr")
	assert.Equal(t, "10.247.0.0/16", c.value("{.spec.ipv4}", "--cache-dir="+cache, "clustercidrs.networking.k8s.io", "worker2-cidr"))
	assert.Equal(t, "clustercidr.networking.k8s.io \"worker2-cidr\" deleted\n", mustKubectl("delete", "-f", file))
	c.eventually("the v1 object is gone once its finalizer is released", func() bool {
		out, err := kubectl("get", "clustercidrs.networking.x-k8s.io", "--ignore-not-found", "-o", "name")
		return err == nil && slices.Contains(strings.Fields(out), "clustercidr.networking.x-k8s.io/default-cluster-cidr") &&
			!slices.Contains(strings.Fields(out), "clustercidr.networking.x-k8s.io/worker2-cidr")
	})
	srv.stop(t)

	// Without --multi-cluster-cidr ClusterCIDR objects do not matter: no v1alpha1 either.
	cache = filepath.Join(dir, "cache-3")
	srv = c.start()
	out := mustKubectl("get", "apiservices", "--ignore-not-found", "-o", "name")
	assert.NotContains(t, out, "apiservice.apiregistration.k8s.io/v1alpha1.networking.k8s.io")
	assert.Contains(t, out, "apiservice.apiregistration.k8s.io/v1.networking.k8s.io")
	_, err = kubectl("get", "clustercidrs.v1alpha1.networking.k8s.io")
	assert.Error(t, err)
	srv.stop(t)
}

func TestListenForAggregatorSkipsWhatKubeAPIServerCannotDial(t *testing.T) {
	ln, addr := listenForAggregator([]netip.Addr{{}, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.IPv4Unspecified()})
	assert.Nil(t, ln, "loopback and unspecified addresses cannot be an EndpointSlice's")
	assert.False(t, addr.IsValid())

	host := defaultNodeIP()
	if host.IsLoopback() {
		t.Skip("needs a non-loopback address on this host")
	}
	// A --node-ip of a simulated node (here from TEST-NET-3) is no address of this host.
	ln, addr = listenForAggregator([]netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("127.0.0.1"), host})
	require.NotNil(t, ln)
	defer ln.Close()
	assert.Equal(t, host, addr)
}
