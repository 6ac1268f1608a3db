package packaged_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/packaged"
	"github.com/k3snet/k3snet/packaged/helm"
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

// Stage writes the packaged manifests, K3s's template variables substituted, into the
// manifests directory a server's deploy controller applies; --disable names leave files out.
func ExampleStage() {
	dir, err := os.MkdirTemp("", "manifests")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	vars := packaged.Vars{
		ClusterDNS:            []netip.Addr{netip.MustParseAddr("10.43.0.10"), netip.MustParseAddr("2001:cafe:43::a")},
		ClusterDomain:         "example.internal",
		SystemDefaultRegistry: "registry.example.com:5000",
	}
	if err := packaged.Stage(dir, vars, map[string]bool{"traefik": true}); err != nil {
		fmt.Println(err)
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Name(), info.Mode().Perm())
	}
	coredns, err := os.ReadFile(filepath.Join(dir, "coredns.yaml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The lines the variables went into.
	for line := range strings.Lines(string(coredns)) {
		line = strings.TrimSpace(line)
		for _, key := range []string{"kubernetes ", "image:", "clusterIP", "ipFamilyPolicy:"} {
			if strings.HasPrefix(line, key) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// coredns.yaml -rw-------
	// kubernetes example.internal in-addr.arpa ip6.arpa {
	// image: "registry.example.com:5000/rancher/mirrored-coredns-coredns:1.12.3"
	// clusterIP: 10.43.0.10
	// clusterIPs: [10.43.0.10,2001:cafe:43::a]
	// ipFamilyPolicy: RequireDualStack
}

// Images lists every image the packaged manifests run, for an air-gap image tarball.
func ExampleImages() {
	images, err := packaged.Images(helm.RenderInline)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, img := range images {
		fmt.Println(img.Manifest, img.Container, img.Ref)
	}
	// Output:
	// coredns coredns rancher/mirrored-coredns-coredns:1.12.3
	// traefik traefik rancher/mirrored-library-traefik:3.6.12
}

// New validates its Options, reporting every missing field at once; nothing talks to the API
// server until Start.
func ExampleNew() {
	_, err := packaged.New(fake.NewClientset(), packaged.Options{})
	fmt.Println(err)
	// Output:
	// packaged: invalid options: ManifestsDir is required
	// a dynamic client (Dynamic) is required
}
