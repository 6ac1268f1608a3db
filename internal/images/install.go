package images

import (
	"fmt"
	"path/filepath"
	"slices"
)

// InstallPrograms are the built binaries of the images that install k3snet on an existing
// cluster (deploy/), as host paths. All must be statically linked.
type InstallPrograms struct {
	// K3snet is cmd/k3snet, the controllers binary.
	K3snet string
	// K3snetNode is cmd/k3snet built with -tags k3snet_node, the binary the node DaemonSet
	// runs: without the cluster-wide controllers' libraries it takes about half the memory
	// on every node.
	K3snetNode string
	// KlipperLB is the ServiceLB forwarder, servicelb/forwarder/cmd/klipper-lb.
	KlipperLB string
	// KlipperHelm is the helm job's program, packaged/helm/cmd/klipper-helm: the
	// controllers run HelmCharts in K3s's helm jobs.
	KlipperHelm string
}

// Validate reports every program that is unset or not a regular file.
func (p InstallPrograms) Validate() error {
	return validatePrograms([]namedProgram{{"K3snet", p.K3snet}, {"K3snetNode", p.K3snetNode}, {"KlipperLB", p.KlipperLB}, {"KlipperHelm", p.KlipperHelm}})
}

// InstallImages returns the images deploy/ runs, built from p and this machine's files:
//
//   - name (ControllersImage unless the build names it otherwise): p.K3snet as /k3snet, its
//     entrypoint, for the controllers Deployment, and p.K3snetNode as /k3snet-node, the node
//     DaemonSet's command (one image, so one name to retag for both); Debian's iptables as in
//     the ServiceLB image and ipset with its shared libraries, which the node mode's
//     NetworkPolicy controller runs; the CA bundle, for the Helm controller's chart downloads;
//   - servicelb.DefaultImage, the ServiceLB forwarder, and helmjob.DefaultJobImage, the
//     HelmCharts' job, as AirgapImages builds them.
func InstallImages(name string, p InstallPrograms) ([]Image, error) {
	return installImages(name, p, debianHost())
}

// installImages is InstallImages with the host's file locations passed in.
func installImages(name string, p InstallPrograms, host hostPaths) ([]Image, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	normalized, err := NormalizeName(name)
	if err != nil {
		return nil, fmt.Errorf("the controllers image: %w", err)
	}
	controllers, err := controllersImage(normalized, p.K3snet, p.K3snetNode, host)
	if err != nil {
		return nil, err
	}
	lb, err := lbImage(p.KlipperLB, host)
	if err != nil {
		return nil, err
	}
	imgs := []Image{controllers, lb, helmJobImage(p.KlipperHelm, host)}
	for i := range imgs { // the controllers' name is normalized already; it stays as it is
		if imgs[i].Name, err = NormalizeName(imgs[i].Name); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// NodeProgram is where the controllers image carries the node build, the command of
// deploy/'s node DaemonSet.
const NodeProgram = "/k3snet-node"

// controllersImage is the k3snet image: both builds of k3snet with iptables, ipset and the
// CA bundle.
func controllersImage(name, k3snet, k3snetNode string, host hostPaths) (Image, error) {
	img, err := firewallImage(name, "/k3snet", k3snet, host)
	if err != nil {
		return Image{}, err
	}
	ipset, err := ipsetFiles(host)
	if err != nil {
		return Image{}, err
	}
	img.Files = dedupeFiles(slices.Concat(img.Files, []File{program(NodeProgram, k3snetNode)}, ipset, caBundle(host)))
	return img, nil
}

// ipsetFiles returns the host's ipset as /usr/sbin/ipset, where k3snet finds it on the
// image's PATH, and the shared libraries it needs (libipset, libmnl, libc and the loader).
func ipsetFiles(host hostPaths) ([]File, error) {
	src, err := filepath.EvalSymlinks(host.ipset)
	if err != nil {
		return nil, fmt.Errorf("finding ipset: %w (is Debian's ipset package installed? hack/setup.sh installs it)", err)
	}
	libs, err := SharedLibraries(src)
	if err != nil {
		return nil, err
	}
	return append([]File{program("/usr/sbin/ipset", src)}, libs...), nil
}
