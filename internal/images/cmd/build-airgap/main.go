// Command build-airgap writes the image tarballs of k3snet, each one OCI image layout that
// K3s imports from <data-dir>/agent/images/ and that `ctr -n k8s.io images import` loads
// under the names the manifests use: with --out, the air-gap tarball of a k3snet cluster
// (every image the cluster runs); with --install-out, the install tarball of deploy/ (the
// controllers image, carrying both the full build and the node build, and the ServiceLB
// forwarder). Images are built from the given programs
// and this machine's iptables and ipset. Each file is replaced atomically; on success
// nothing is printed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/packaged/helm"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main with its inputs passed in, so that its defers run.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("build-airgap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p images.Programs
	var install images.InstallPrograms
	fs.StringVar(&p.Pause, "pause", "", "the pause program (internal/images/pause)")
	fs.StringVar(&p.CoreDNS, "coredns", "", "the CoreDNS program")
	fs.StringVar(&p.Traefik, "traefik", "", "the Traefik program")
	fs.StringVar(&p.KlipperLB, "klipper-lb", "", "the ServiceLB forwarder (servicelb/forwarder/cmd/klipper-lb)")
	fs.StringVar(&p.TestServer, "testserver", "", "the test server (internal/images/testserver)")
	fs.StringVar(&p.KlipperHelm, "klipper-helm", "", "the helm job (packaged/helm/cmd/klipper-helm), in both tarballs")
	fs.StringVar(&install.K3snet, "k3snet", "", "the controllers binary (cmd/k3snet), for --install-out")
	fs.StringVar(&install.K3snetNode, "k3snet-node", "", "the node build of cmd/k3snet (-tags k3snet_node), which the node DaemonSet runs, for --install-out")
	image := fs.String("k3snet-image", images.ControllersImage, "the name of the controllers image, for --install-out")
	out := fs.String("out", "", "the air-gap tarball to write")
	installOut := fs.String("install-out", "", "the install tarball to write")
	if err := fs.Parse(args); err != nil {
		return exitBadUsage
	}
	if (*out == "" && *installOut == "") || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "build-airgap: --out or --install-out is required and no argument is taken")
		return exitBadUsage
	}
	if *installOut != "" && install.K3snetNode == "" {
		// Named by its flag: without it the DaemonSet's command would be missing from the image.
		fmt.Fprintln(stderr, "build-airgap: --install-out needs --k3snet-node, the node build (go build -tags k3snet_node ./cmd/k3snet) the node DaemonSet runs")
		return exitBadUsage
	}
	install.KlipperLB, install.KlipperHelm = p.KlipperLB, p.KlipperHelm
	tarballs := []struct {
		out      string
		validate func() error
		list     func() ([]images.Image, error)
	}{
		{*out, p.Validate, func() ([]images.Image, error) { return images.AirgapImages(p, helm.RenderInline) }},
		{*installOut, install.Validate, func() ([]images.Image, error) { return images.InstallImages(*image, install) }},
	}
	var errs []error
	for _, tb := range tarballs {
		if tb.out != "" {
			errs = append(errs, tb.validate())
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "build-airgap: %v\n", err)
		return exitBadUsage
	}
	for _, tb := range tarballs {
		if tb.out == "" {
			continue
		}
		if err := build(tb.list, tb.out); err != nil {
			fmt.Fprintf(stderr, "build-airgap: %v\n", err)
			return exitFailed
		}
	}
	return exitOK
}

// build writes the tarball to a temporary file beside out and renames it into place, so a
// reader never sees half a tarball.
func build(list func() ([]images.Image, error), out string) (err error) {
	imgs, err := list()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.Remove(tmp.Name()))
		}
	}()
	if err := images.WriteArchive(tmp, imgs); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Sync(); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
