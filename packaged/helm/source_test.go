package helm

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

func TestChartSourceFor(t *testing.T) {
	tests := []struct {
		name        string
		spec        helmchart.HelmChartSpec
		staticDir   string
		want        chartSource
		unsupported bool
	}{
		{
			name: "chartContent overrides chart and version",
			spec: helmchart.HelmChartSpec{ChartContent: "H4sI", Chart: "https://example.com/x.tgz", Version: "1.0.0"},
			want: chartSource{kind: sourceInline},
		},
		{
			name: "an https chart is the URL of an archive and its version is ignored",
			spec: helmchart.HelmChartSpec{Chart: "https://example.com/charts/x-0.1.0.tgz", Version: "9.9.9", Repo: "https://ignored"},
			want: chartSource{kind: sourceURL, ref: "https://example.com/charts/x-0.1.0.tgz"},
		},
		{
			name: "an http chart is a URL too",
			spec: helmchart.HelmChartSpec{Chart: "http://127.0.0.1:8080/x-0.1.0.tgz"},
			want: chartSource{kind: sourceURL, ref: "http://127.0.0.1:8080/x-0.1.0.tgz"},
		},
		{
			name: "an oci chart keeps its version for the registry client",
			spec: helmchart.HelmChartSpec{Chart: "oci://registry.example.com/charts/x", Version: "^1.2"},
			want: chartSource{kind: sourceOCI, ref: "oci://registry.example.com/charts/x", version: "^1.2"},
		},
		{
			name: "a name with a repo is looked up in the repo's index",
			spec: helmchart.HelmChartSpec{Chart: "traefik", Repo: "https://traefik.github.io/charts", Version: "34.2.0"},
			want: chartSource{kind: sourceRepo, ref: "traefik", repo: "https://traefik.github.io/charts", version: "34.2.0"},
		},
		{
			name: "stable/<name> without a repo comes from the stable repository, as K3s",
			spec: helmchart.HelmChartSpec{Chart: "stable/mysql"},
			want: chartSource{kind: sourceRepo, ref: "mysql", repo: stableRepoURL},
		},
		{
			name:        "a name without a repo cannot be found",
			spec:        helmchart.HelmChartSpec{Chart: "traefik"},
			unsupported: true,
		},
		{
			name:        "a repo that is not an http(s) URL is unsupported",
			spec:        helmchart.HelmChartSpec{Chart: "x", Repo: "oci://registry.example.com/charts"},
			unsupported: true,
		},
		{
			name:        "a chart on the K3s supervisor is unsupported without a static directory",
			spec:        helmchart.HelmChartSpec{Chart: "https://%{KUBERNETES_API}%/static/charts/traefik-1.81.0.tgz"},
			unsupported: true,
		},
		{
			name:      "with one it is a file of the static directory",
			spec:      helmchart.HelmChartSpec{Chart: "https://%{KUBERNETES_API}%/static/charts/traefik-1.81.0.tgz", Version: "ignored"},
			staticDir: "/var/lib/rancher/k3s/server/static",
			want:      chartSource{kind: sourceStatic, ref: "charts/traefik-1.81.0.tgz"},
		},
		{
			name:        "a static path that leaves the directory is unsupported",
			spec:        helmchart.HelmChartSpec{Chart: "https://%{KUBERNETES_API}%/static/../cred/admin.kubeconfig"},
			staticDir:   "/var/lib/rancher/k3s/server/static",
			unsupported: true,
		},
		{
			name:        "the supervisor's address anywhere but in a static URL is unsupported",
			spec:        helmchart.HelmChartSpec{Chart: "https://%{KUBERNETES_API}%/v1-k3s/charts/x.tgz"},
			staticDir:   "/var/lib/rancher/k3s/server/static",
			unsupported: true,
		},
		{
			name:        "a file URL is unsupported",
			spec:        helmchart.HelmChartSpec{Chart: "file:///tmp/x.tgz"},
			unsupported: true,
		},
		{
			name:        "neither chart nor chartContent is unsupported",
			spec:        helmchart.HelmChartSpec{Repo: "https://example.com"},
			unsupported: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chartSourceFor(tt.spec, tt.staticDir)
			if tt.unsupported {
				require.Error(t, err)
				assert.True(t, errors.Is(err, errUnsupportedChartSource), "error %v wraps errUnsupportedChartSource", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRegistryCredentials(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("bob:s3cret:with-colon"))
	tests := []struct {
		name     string
		config   string
		host     string
		wantUser string
		wantPass string
		wantOK   bool
		wantErr  bool
	}{
		{
			name:     "username and password of the host",
			config:   `{"auths":{"other.io":{"username":"x","password":"y"},"registry.example.com:5000":{"username":"alice","password":"pw"}}}`,
			host:     "registry.example.com:5000",
			wantUser: "alice", wantPass: "pw", wantOK: true,
		},
		{
			name:     "the auth field, split at the first colon",
			config:   `{"auths":{"https://registry.example.com/v1/":{"auth":"` + auth + `"}}}`,
			host:     "registry.example.com",
			wantUser: "bob", wantPass: "s3cret:with-colon", wantOK: true,
		},
		{
			name:   "no entry for the host",
			config: `{"auths":{"other.io":{"username":"x","password":"y"}}}`,
			host:   "registry.example.com",
		},
		{
			name:    "not JSON",
			config:  `auths: {}`,
			host:    "registry.example.com",
			wantErr: true,
		},
		{
			name:    "an auth field that is not user:password",
			config:  `{"auths":{"registry.example.com":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("nocolon")) + `"}}}`,
			host:    "registry.example.com",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, pass, ok, err := registryCredentials([]byte(tt.config), tt.host)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []any{tt.wantUser, tt.wantPass, tt.wantOK}, []any{user, pass, ok})
		})
	}
}

func TestAppendCABundle(t *testing.T) {
	tests := []struct {
		name   string
		bundle string
		data   map[string]string
		want   string
	}{
		{name: "nothing gives nothing"},
		{name: "repoCA alone is kept", bundle: "A", want: "A"},
		{name: "ConfigMap keys follow repoCA in key order, each on its own lines", bundle: "A", data: map[string]string{"b.pem": "B\n", "a.pem": "C"}, want: "A\nC\nB\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(appendCABundle([]byte(tt.bundle), tt.data)))
		})
	}
}

func TestFetchAuthFingerprintSeparatesCredentials(t *testing.T) {
	base := fetchAuth{username: "u", password: "p"}
	assert.Equal(t, base.fingerprint(), fetchAuth{username: "u", password: "p"}.fingerprint())
	for _, other := range []fetchAuth{{}, {username: "u", password: "q"}, {username: "up"}, {username: "u", password: "p", insecureSkipTLSVerify: true}} {
		assert.NotEqual(t, base.fingerprint(), other.fingerprint(), "%+v", other)
	}
}

func TestNewTransportRejectsABadCA(t *testing.T) {
	_, err := newTransport(fetchAuth{caPEM: []byte("not a certificate")})
	require.Error(t, err)
	_, err = newTransport(fetchAuth{certPEM: []byte("x"), keyPEM: []byte("y")})
	require.Error(t, err)
	tr, err := newTransport(fetchAuth{insecureSkipTLSVerify: true})
	require.NoError(t, err)
	assert.True(t, tr.TLSClientConfig.InsecureSkipVerify)
}

func TestChartSourceStringHidesCredentials(t *testing.T) {
	tests := []struct {
		name string
		src  chartSource
		want string
	}{
		{name: "inline", src: chartSource{kind: sourceInline}, want: "inline chartContent"},
		{name: "a URL without its password", src: chartSource{kind: sourceURL, ref: "https://u:secret@example.com/x.tgz"}, want: "https://u:xxxxx@example.com/x.tgz"},
		{name: "a repository chart and its version", src: chartSource{kind: sourceRepo, ref: "x", repo: "https://example.com", version: "1.0.0"}, want: "chart x version 1.0.0 from repository https://example.com"},
		{name: "an OCI chart without a version", src: chartSource{kind: sourceOCI, ref: "oci://r.example.com/x"}, want: "oci://r.example.com/x newest version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.src.String())
		})
	}
}
