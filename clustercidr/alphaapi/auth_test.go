package alphaapi

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrontProxyUser(t *testing.T) {
	ca := newTestCA(t, "front-proxy-ca")
	proxyCert := func(cn string) *tls.ConnectionState {
		c, err := x509.ParseCertificate(ca.client(t, cn).Certificate[0])
		require.NoError(t, err)
		return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c, ca.cert}}}
	}
	headers := http.Header{
		"X-Remote-User":  {"bob"},
		"X-Remote-Group": {"devs", "system:authenticated"},
		// kube-apiserver percent-encodes an extra's key; Go canonicalizes the header name.
		"X-Remote-Extra-Authentication.kubernetes.io%2fcredential-Id": {"X509SHA256=ab"},
		"X-Remote-Extra-Scopes": {"a", "b"},
	}
	for _, tc := range []struct {
		name    string
		tls     *tls.ConnectionState
		allowed []string
		headers http.Header
		want    remoteUser
		ok      bool
	}{
		{
			name: "the front proxy's certificate: the headers name the user",
			tls:  proxyCert("system:auth-proxy"), allowed: []string{"system:auth-proxy"}, headers: headers, ok: true,
			want: remoteUser{name: "bob", groups: []string{"devs", "system:authenticated"}, extra: map[string][]string{
				"authentication.kubernetes.io/credential-id": {"X509SHA256=ab"}, "scopes": {"a", "b"}}},
		},
		{name: "no TLS", headers: headers},
		{name: "no verified client certificate", tls: &tls.ConnectionState{}, headers: headers},
		{name: "another name of the CA", tls: proxyCert("someone"), allowed: []string{"system:auth-proxy"}, headers: headers},
		{
			name: "no allowed names: any certificate of the CA", tls: proxyCert("someone"), headers: http.Header{"X-Remote-User": {"bob"}},
			want: remoteUser{name: "bob"}, ok: true,
		},
		{name: "no user header", tls: proxyCert("system:auth-proxy"), allowed: []string{"system:auth-proxy"}, headers: http.Header{"X-Remote-Group": {"g"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/apis", nil)
			r.TLS = tc.tls
			r.Header = tc.headers
			got, ok := frontProxyUser(r, tc.allowed)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestImpersonateHeaders(t *testing.T) {
	u := remoteUser{name: "bob", groups: []string{"devs", "system:authenticated"},
		extra: map[string][]string{"authentication.kubernetes.io/credential-id": {"X509SHA256=ab"}}}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	u.impersonate(req)
	assert.Equal(t, "bob", req.Header.Get("Impersonate-User"))
	assert.Equal(t, []string{"devs", "system:authenticated"}, req.Header.Values("Impersonate-Group"))
	assert.Equal(t, []string{"X509SHA256=ab"}, req.Header.Values("Impersonate-Extra-Authentication.kubernetes.io%2Fcredential-Id"))
}

func TestEscapeHeaderKey(t *testing.T) {
	for key, want := range map[string]string{
		"scopes":                  "scopes",
		"example.org/team":        "example.org%2Fteam",
		"a b%c":                   "a%20b%25c",
		"authentication.k8s.io/x": "authentication.k8s.io%2Fx",
	} {
		assert.Equal(t, want, escapeHeaderKey(key), key)
	}
}
