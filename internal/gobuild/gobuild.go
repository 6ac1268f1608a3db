// Package gobuild builds the project's programs (k3slike, k3snet) for tests and benchmarks as
// `make run` builds k3slike: without kustomize's Go plugin support, which Helm drags in.
package gobuild

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// NoGoPluginsTag leaves kustomize's Go plugin loader out. Helm's Kubernetes client reaches
// kustomize through k8s.io/cli-runtime, and kustomize's loader imports the standard library's
// plugin package. In a cgo build that makes the Go linker export every symbol dynamically and
// keep every exported method, in case a plugin needs them (kubernetes-sigs/kustomize#5524):
// k3slike grows from 104 to 134 MB on disk and its idle RSS by 6 MiB (by 26 MiB and more
// when the page cache holds the binary in large folios). A CGO_ENABLED=0 build
// (the install image's) cannot load plugins, so the linker does none of that.
const NoGoPluginsTag = "kustomize_disable_go_plugin_support"

// Tags returns the -tags value for a build with extra tags (such as k3snet_node): NoGoPluginsTag
// first, then the rest in order without duplicates or empty names.
func Tags(extra ...string) string {
	tags := []string{NoGoPluginsTag}
	for _, t := range extra {
		if t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return strings.Join(tags, ",")
}

// Command is `go build -tags Tags(tags...) -o out pkg`, pkg a package path or a directory
// relative to the command's Dir.
func Command(out, pkg string, tags ...string) *exec.Cmd {
	return exec.Command("go", "build", "-tags", Tags(tags...), "-o", out, pkg)
}

// Deps lists the packages the package in the working directory links, itself included, as
// `go list -deps` does with the given build tags (none: the default build).
func Deps(tags ...string) ([]string, error) {
	args := []string{"list", "-deps"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	out, err := exec.Command("go", append(args, ".")...).Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps: %w", err)
	}
	return strings.Fields(string(out)), nil
}

// HelmTrees are the package trees of the Helm SDK and of k3snet's in-process Helm
// controller: a process that runs HelmCharts in K3s's jobs links none of them.
func HelmTrees() []string {
	return []string{"helm.sh", "github.com/k3snet/k3snet/packaged/helm"}
}

// Within returns the packages of deps in any of the trees: a tree is a package and the
// packages under its path ("a/b" holds "a/b" and "a/b/c", not "a/bc").
func Within(deps []string, trees ...string) []string {
	var out []string
	for _, dep := range deps {
		for _, tree := range trees {
			if dep == tree || strings.HasPrefix(dep, tree+"/") {
				out = append(out, dep)
				break
			}
		}
	}
	return out
}
