package packaged_test

import (
	"context"
	"net/netip"
	"path/filepath"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/packaged"
)

// Example wires the packaged components as a K3s server does at start: stage the packaged
// manifests (leaving an existing Traefik v1 alone), then run the deploy controller on the
// directory with the same --disable names.
func Example() {
	run := func(ctx context.Context, cfg *rest.Config, dataDir string, disable []string) error {
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return err
		}
		disables := map[string]bool{}
		for _, d := range disable {
			disables[d] = true
		}
		skips := map[string]bool{}
		for k := range disables {
			skips[k] = true
		}
		if v1, err := packaged.TraefikV1Installed(ctx, dyn, nil); err != nil {
			return err
		} else if v1 {
			skips["traefik"] = true
		}
		dir := filepath.Join(dataDir, "server", "manifests")
		vars := packaged.Vars{ClusterDNS: []netip.Addr{netip.MustParseAddr("10.43.0.10")}}
		if err := packaged.Stage(dir, vars, skips); err != nil {
			return err
		}
		ctrl, err := packaged.New(client, packaged.Options{ManifestsDir: dir, Dynamic: dyn, Disables: disables})
		if err != nil {
			return err
		}
		factory := informers.NewSharedInformerFactory(client, 0)
		return ctrl.Start(ctx, factory)
	}
	_ = run
}
