// Command build-airgap writes the air-gap image tarball of a k3snet cluster: every image
// the cluster runs, built from the given programs and this machine's iptables, as one OCI
// image layout that K3s imports from <data-dir>/agent/images/ and that
// `ctr -n k8s.io images import` loads under the manifests' names. The file is replaced
// atomically; on success nothing is printed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/k3snet/k3snet/internal/images"
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
	fs.StringVar(&p.Pause, "pause", "", "the pause program (internal/images/pause)")
	fs.StringVar(&p.CoreDNS, "coredns", "", "the CoreDNS program")
	fs.StringVar(&p.Traefik, "traefik", "", "the Traefik program")
	fs.StringVar(&p.KlipperLB, "klipper-lb", "", "the ServiceLB forwarder (servicelb/forwarder/cmd/klipper-lb)")
	fs.StringVar(&p.TestServer, "testserver", "", "the test server (internal/images/testserver)")
	out := fs.String("out", "", "the tarball to write")
	if err := fs.Parse(args); err != nil {
		return exitBadUsage
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "build-airgap: --out is required and no argument is taken")
		return exitBadUsage
	}
	if err := p.Validate(); err != nil {
		fmt.Fprintf(stderr, "build-airgap: %v\n", err)
		return exitBadUsage
	}
	if err := build(p, *out); err != nil {
		fmt.Fprintf(stderr, "build-airgap: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// build writes the tarball to a temporary file beside out and renames it into place, so a
// reader never sees half a tarball.
func build(p images.Programs, out string) (err error) {
	imgs, err := images.AirgapImages(p)
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
