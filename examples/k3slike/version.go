package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// kubernetesVersion is the version of the control-plane, kubelet and kube-proxy binaries
// k3slike runs: hack/build-tools.sh builds them from k8s.io/kubernetes at this version (a
// test keeps the two in agreement). k3slike links no Kubernetes component itself.
const kubernetesVersion = "v1.37.2"

// buildVersion is k3slike's version from its build info: the module version when built from
// a tagged module, else the VCS revision Go stamped into the binary.
func buildVersion(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "unknown"
	}
	version := info.Main.Version
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return version
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified == "true" {
		revision += ", modified"
	}
	return fmt.Sprintf("%s (%s)", version, revision)
}

// writeVersion prints the versions as `k3s --version` does: k3slike's, then Go's, and the
// Kubernetes version of the embedded control plane.
func writeVersion(w io.Writer) {
	info, ok := debug.ReadBuildInfo()
	fmt.Fprintf(w, "k3slike version %s\n", buildVersion(info, ok))
	fmt.Fprintf(w, "go version %s\n", runtime.Version())
	fmt.Fprintf(w, "kubernetes version %s\n", kubernetesVersion)
}
