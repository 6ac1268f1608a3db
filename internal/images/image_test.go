package images

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		name    string
		ref     string
		want    string
		wantErr bool
	}{
		{name: "a Docker Hub repository gets docker.io", ref: "rancher/klipper-lb:v0.4.17", want: "docker.io/rancher/klipper-lb:v0.4.17"},
		{name: "an official image gets docker.io/library", ref: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{name: "a reference without a tag gets latest", ref: "rancher/mirrored-pause", want: "docker.io/rancher/mirrored-pause:latest"},
		{name: "a registry with a dot is kept", ref: "k3snet.local/testserver:v1", want: "k3snet.local/testserver:v1"},
		{name: "a registry with a port is not mistaken for a tag", ref: "localhost:5000/a/b", want: "localhost:5000/a/b:latest"},
		{name: "localhost is a registry", ref: "localhost/a:1", want: "localhost/a:1"},
		{name: "a fully qualified reference is unchanged", ref: "docker.io/rancher/klipper-lb:v0.4.17", want: "docker.io/rancher/klipper-lb:v0.4.17"},
		{name: "a digest is kept without adding latest", ref: "a/b@sha256:0123", want: "docker.io/a/b@sha256:0123"},
		{name: "an empty reference is rejected", ref: "", wantErr: true},
		{name: "an upper-case repository is rejected", ref: "Rancher/x:1", wantErr: true},
		{name: "an empty tag is rejected", ref: "a/b:", wantErr: true},
		{name: "spaces are rejected", ref: "a/b :1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeName(tt.ref)
			if tt.wantErr {
				require.ErrorIs(t, err, errInvalidName)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNameForms(t *testing.T) {
	tests := []struct {
		name         string
		normalized   string
		wantTag      string
		wantFamiliar string
	}{
		{name: "a Docker Hub image loses docker.io in its familiar form", normalized: "docker.io/rancher/klipper-lb:v0.4.17", wantTag: "v0.4.17", wantFamiliar: "rancher/klipper-lb:v0.4.17"},
		{name: "an official image loses library too", normalized: "docker.io/library/busybox:1.36", wantTag: "1.36", wantFamiliar: "busybox:1.36"},
		{name: "another registry keeps its name", normalized: "k3snet.local/testserver:v1", wantTag: "v1", wantFamiliar: "k3snet.local/testserver:v1"},
		{name: "a registry port is not a tag", normalized: "localhost:5000/a@sha256:01", wantTag: "", wantFamiliar: "localhost:5000/a@sha256:01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantTag, tagOf(tt.normalized))
			assert.Equal(t, tt.wantFamiliar, familiarName(tt.normalized))
		})
	}
}
