package images

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Images this package defines itself. The others are named by the code that runs them
// (servicelb.DefaultImage, the packaged manifests).
const (
	// PauseImage is the pod sandbox image, K3s's default: the agent's containerd config names
	// it as the sandbox image, so the CRI never pulls one.
	PauseImage = "rancher/mirrored-pause:3.6"
	// TestServerImage is the end-to-end test tool's image (see ./testserver).
	TestServerImage = "k3snet.local/testserver:v1"
	// ControllersImage is the default name of the image deploy/ runs, cmd/k3snet with the
	// iptables and ipset of its node mode; InstallImages builds it under any name.
	ControllersImage = "k3snet.local/k3snet:v0.1.0"
)

// File is one entry of an image's filesystem. Exactly one of Source, Data and Link gives
// the content of a regular file or symlink; a directory has Mode with fs.ModeDir and none.
type File struct {
	// Path is the absolute, clean path in the image.
	Path string
	// Mode holds the permission bits (with fs.ModeSetuid, fs.ModeSetgid, fs.ModeSticky) and
	// fs.ModeDir for a directory. Zero permissions mean the source file's, or 0644 for Data.
	Mode fs.FileMode
	// Source is a host file whose content is copied, following symlinks.
	Source string
	// Data is the file's content inline; an empty file has a non-nil empty Data.
	Data []byte
	// Link is the target of a symlink.
	Link string
}

// Image is one container image: a single layer of Files and the runtime config.
type Image struct {
	// Name is the image reference, e.g. rancher/klipper-lb:v0.4.17; the archive records it
	// fully qualified (docker.io/rancher/klipper-lb:v0.4.17).
	Name string
	// Entrypoint, Cmd, Env, WorkingDir and User are the OCI image config fields of the same
	// names.
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
	// Files is the content of the image's one layer. Parent directories are added as 0755
	// where Files does not list them.
	Files []File
}

// errInvalidName marks an image reference NormalizeName rejects.
var errInvalidName = errors.New("invalid image name")

// NormalizeName returns ref fully qualified, as containerd and the CRI name images: a
// reference without a registry gets docker.io, a single-component Docker Hub name gets
// library/, and a reference without tag or digest gets :latest. For example
// rancher/klipper-lb:v0.4.17 becomes docker.io/rancher/klipper-lb:v0.4.17.
func NormalizeName(ref string) (string, error) {
	if ref == "" || strings.TrimSpace(ref) != ref || strings.ContainsAny(ref, " \t\n") {
		return "", fmt.Errorf("%w: %q", errInvalidName, ref)
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	repo, tag := name, ""
	// A colon after the last slash starts the tag; one before it is a registry's port.
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		repo, tag = name[:i], name[i+1:]
		if tag == "" {
			return "", fmt.Errorf("%w: %q has an empty tag", errInvalidName, ref)
		}
	}
	if hasDigest && digest == "" {
		return "", fmt.Errorf("%w: %q has an empty digest", errInvalidName, ref)
	}
	domain, rest, found := strings.Cut(repo, "/")
	if !found || !(strings.ContainsAny(domain, ".:") || domain == "localhost") {
		domain, rest = "docker.io", repo
	}
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	if rest == "" || strings.ToLower(rest) != rest || strings.Contains(rest, "//") || strings.HasSuffix(rest, "/") {
		return "", fmt.Errorf("%w: %q has an invalid repository", errInvalidName, ref)
	}
	out := domain + "/" + rest
	if tag != "" {
		out += ":" + tag
	}
	if hasDigest {
		return out + "@" + digest, nil
	}
	if tag == "" {
		out += ":latest"
	}
	return out, nil
}

// tagOf returns the tag of a normalized reference ("" when it has only a digest): the
// org.opencontainers.image.ref.name of its index entry.
func tagOf(normalized string) string {
	name, _, _ := strings.Cut(normalized, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[i+1:]
	}
	return ""
}

// familiarName returns the short form Docker prints of a normalized reference: without
// docker.io/ and library/ (docker save's RepoTags use it).
func familiarName(normalized string) string {
	s, ok := strings.CutPrefix(normalized, "docker.io/")
	if !ok {
		return normalized
	}
	if rest, ok := strings.CutPrefix(s, "library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return s
}
