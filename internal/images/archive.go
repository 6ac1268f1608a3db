package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
)

// Media types and annotations of the OCI image spec (image-layout.md, manifest.md,
// annotations.md) and containerd's image name annotation.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
	// annotationRefName is org.opencontainers.image.ref.name: "the tag" for an image layout
	// whose index lists several images.
	annotationRefName = "org.opencontainers.image.ref.name"
	// annotationImageName is the full reference containerd's importer names the image by;
	// without it, ctr would prefix the bare tag with "import-<date>".
	annotationImageName = "io.containerd.image.name"
	imageLayoutVersion  = "1.0.0"
)

// descriptor is an OCI content descriptor (descriptor.md).
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

// platform is the platform of an index entry (image-index.md).
type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// ociIndex is index.json (image-index.md).
type ociIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// ociManifest is an image manifest (manifest.md).
type ociManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// imageConfig is an image configuration (config.md); "created" and "history" are optional
// and left out, so the config depends only on the image.
type imageConfig struct {
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       runtimeConfig `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
}

// runtimeConfig is the "config" object of an image configuration.
type runtimeConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// rootFS lists the uncompressed layer digests of an image configuration.
type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// ociLayout is the oci-layout file.
type ociLayout struct {
	ImageLayoutVersion string `json:"imageLayoutVersion"`
}

// dockerManifest is one entry of docker-archive's manifest.json, as `docker save` writes it
// beside an OCI layout.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// plannedImage is an image with its layer measured and its JSON documents encoded.
type plannedImage struct {
	name     string // normalized
	entries  []layerEntry
	layer    descriptor
	config   []byte
	manifest []byte
}

// errDuplicateName marks two images of one archive with the same normalized name.
var errDuplicateName = errors.New("duplicate image name")

// WriteArchive writes imgs as one OCI image-layout tarball to w. Each image is one manifest
// with one uncompressed layer, for linux and this program's architecture; its index.json
// entry carries the full reference (io.containerd.image.name) and the tag
// (org.opencontainers.image.ref.name), and a docker-archive manifest.json names it too. The
// same inputs give the same bytes.
//
// Source files are read twice: once to digest each layer, then to write it, so no layer is
// held in memory or on disk. A source that changes in between is an error.
func WriteArchive(w io.Writer, imgs []Image) error {
	planned, err := planImages(imgs)
	if err != nil {
		return err
	}

	idx := ociIndex{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{}}
	docker := make([]dockerManifest, 0, len(planned))
	for _, p := range planned {
		entry := blobDescriptor(mediaTypeManifest, p.manifest)
		entry.Platform = &platform{Architecture: runtime.GOARCH, OS: "linux"}
		ref := tagOf(p.name)
		if ref == "" {
			ref = p.name
		}
		entry.Annotations = map[string]string{annotationImageName: p.name, annotationRefName: ref}
		idx.Manifests = append(idx.Manifests, entry)
		docker = append(docker, dockerManifest{
			Config:   blobPath(blobDescriptor(mediaTypeConfig, p.config).Digest),
			RepoTags: []string{familiarName(p.name)},
			Layers:   []string{blobPath(p.layer.Digest)},
		})
	}
	layout, err := json.Marshal(ociLayout{ImageLayoutVersion: imageLayoutVersion})
	if err != nil {
		return err
	}
	index, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	dockerJSON, err := json.Marshal(docker)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{"oci-layout", layout}, {"index.json", index}, {"manifest.json", dockerJSON}} {
		if err := writeArchiveFile(tw, f.name, f.data); err != nil {
			return err
		}
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: entryTime(), Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("writing archive directory %s: %w", dir, err)
		}
	}
	written := map[string]bool{}
	for _, p := range planned {
		for _, blob := range [][]byte{p.config, p.manifest} {
			d := blobDescriptor("", blob).Digest
			if written[d] {
				continue
			}
			written[d] = true
			if err := writeArchiveFile(tw, blobPath(d), blob); err != nil {
				return err
			}
		}
		if written[p.layer.Digest] {
			continue
		}
		written[p.layer.Digest] = true
		if err := writeLayerBlob(tw, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

// planImages normalizes the names, digests every layer and encodes the configs and
// manifests.
func planImages(imgs []Image) ([]plannedImage, error) {
	out := make([]plannedImage, 0, len(imgs))
	seen := map[string]bool{}
	for _, img := range imgs {
		name, err := NormalizeName(img.Name)
		if err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: %s", errDuplicateName, name)
		}
		seen[name] = true
		entries, err := layerEntries(img.Files)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
		d := newDigester()
		if err := writeLayer(d, entries); err != nil {
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
		layer := descriptor{MediaType: mediaTypeLayer, Digest: d.digest(), Size: d.n}
		config, err := json.Marshal(imageConfig{
			Architecture: runtime.GOARCH,
			OS:           "linux",
			Config: runtimeConfig{
				User: img.User, Env: img.Env, Entrypoint: img.Entrypoint, Cmd: img.Cmd, WorkingDir: img.WorkingDir,
			},
			// An uncompressed layer's diff ID is its digest.
			RootFS: rootFS{Type: "layers", DiffIDs: []string{layer.Digest}},
		})
		if err != nil {
			return nil, err
		}
		manifest, err := json.Marshal(ociManifest{
			SchemaVersion: 2,
			MediaType:     mediaTypeManifest,
			Config:        blobDescriptor(mediaTypeConfig, config),
			Layers:        []descriptor{layer},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, plannedImage{name: name, entries: entries, layer: layer, config: config, manifest: manifest})
	}
	return out, nil
}

// writeLayerBlob writes p's layer a second time, now into the archive, and checks that it
// came out as the first time.
func writeLayerBlob(tw *tar.Writer, p plannedImage) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: blobPath(p.layer.Digest), Size: p.layer.Size,
		Mode: 0o644, ModTime: entryTime(), Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("image %s: writing layer header: %w", p.name, err)
	}
	d := newDigester()
	if err := writeLayer(io.MultiWriter(tw, d), p.entries); err != nil {
		return fmt.Errorf("image %s: %w", p.name, err)
	}
	if got := d.digest(); got != p.layer.Digest || d.n != p.layer.Size {
		return fmt.Errorf("image %s: an input file changed while the archive was written (layer %s, %d bytes; first pass %s, %d bytes)",
			p.name, got, d.n, p.layer.Digest, p.layer.Size)
	}
	return nil
}

// writeArchiveFile writes one small regular file into the archive.
func writeArchiveFile(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)),
		Mode: 0o644, ModTime: entryTime(), Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing archive file %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("writing archive file %s: %w", name, err)
	}
	return nil
}

// blobDescriptor describes data as a blob of mediaType.
func blobDescriptor(mediaType string, data []byte) descriptor {
	sum := sha256.Sum256(data)
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

// blobPath is where an image layout keeps the blob of digest ("sha256:<hex>").
func blobPath(digest string) string {
	return "blobs/sha256/" + digest[len("sha256:"):]
}

// digester counts and hashes what is written to it.
type digester struct {
	h hash.Hash
	n int64
}

func newDigester() *digester { return &digester{h: sha256.New()} }

func (d *digester) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return d.h.Write(p)
}

// digest returns "sha256:<hex>" of what was written.
func (d *digester) digest() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }
