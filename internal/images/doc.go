// Package images builds the container images a k3snet cluster runs from files on this
// machine, with no registry and no Docker daemon, and writes them as one air-gap image
// tarball: the file K3s imports from <data-dir>/agent/images/*.tar at agent start, and that
// `ctr -n k8s.io images import` loads under the names the manifests use.
//
// The tarball is an OCI image layout (oci-layout, index.json, blobs/sha256/...) with one
// manifest per image, one uncompressed layer each, and a docker-archive manifest.json beside
// it for tools that only read that format. Its bytes depend only on the inputs: entries are
// sorted, times fixed and owners root, so an unchanged input gives an unchanged tarball.
//
// AirgapImages lists the images themselves: the sandbox (pause) image, CoreDNS, Traefik, the
// ServiceLB forwarder with Debian's iptables and its shared libraries, and a test server for
// end-to-end tests. InstallImages lists those of the install tarball, which deploy/ runs on
// an existing cluster: the controllers image (cmd/k3snet with iptables and ipset) and the
// ServiceLB forwarder. The programs are built elsewhere (hack/build-images.sh).
package images
