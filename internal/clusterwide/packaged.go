package clusterwide

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"

	"k8s.io/client-go/dynamic"

	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/packaged"
)

// stagePackaged writes the packaged manifests (CoreDNS, Traefik) that --disable does not name
// into <data-dir>/server/manifests, as every K3s server does at start, and returns the deploy
// controller's options to apply that directory and uninstall what --disable names.
func stagePackaged(ctx context.Context, s compose.ClusterSettings, dyn dynamic.Interface) (packaged.Options, error) {
	disables := map[string]bool{}
	for _, item := range s.Disable {
		disables[item] = true
	}
	skips := maps.Clone(disables)
	// An existing Traefik v1 is left alone rather than upgraded, as K3s does: not staged, and
	// not uninstalled either.
	if v1, err := packaged.TraefikV1Installed(ctx, dyn, nil); err != nil {
		return packaged.Options{}, err
	} else if v1 {
		skips["traefik"] = true
	}
	dir := filepath.Join(s.DataDir, "server", "manifests")
	vars := packaged.Vars{ClusterDNS: s.ClusterDNS, ClusterDomain: s.ClusterDomain, SystemDefaultRegistry: s.SystemDefaultRegistry}
	if err := packaged.Stage(dir, vars, skips); err != nil {
		return packaged.Options{}, fmt.Errorf("staging the packaged manifests into %s: %w", dir, err)
	}
	return packaged.Options{ManifestsDir: dir, Dynamic: dyn, Disables: disables}, nil
}
