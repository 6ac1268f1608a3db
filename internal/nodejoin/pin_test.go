package nodejoin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2/ktesting"
)

func TestVerifyPinnedChain(t *testing.T) {
	ca := newTestCA(t)
	leaf := newServingCert(t, ca)
	otherCA := newTestCA(t)
	otherLeaf := newServingCert(t, otherCA)
	clientLeaf := newClientCert(t, ca, "someone")
	intermediate := issue(t, ca, &x509.Certificate{
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
	})
	viaIntermediate := newServingCert(t, intermediate)

	raw := func(certs ...*testCert) [][]byte {
		var out [][]byte
		for _, c := range certs {
			out = append(out, c.cert.Raw)
		}
		return out
	}
	tests := []struct {
		name    string
		chain   [][]byte
		hash    string
		host    string
		wantErr string
	}{
		{name: "the CA after the leaf vouches for the server's IP", chain: raw(leaf, ca), hash: certHash(ca.cert.Raw), host: "127.0.0.1"},
		{name: "the CA vouches for the server's DNS name", chain: raw(leaf, ca), hash: certHash(ca.cert.Raw), host: "localhost"},
		{name: "an intermediate between leaf and the pinned root is fine",
			chain: raw(viaIntermediate, intermediate, ca), hash: certHash(ca.cert.Raw), host: "127.0.0.1"},
		{name: "another cluster's CA does not have the hash",
			chain: raw(otherLeaf, otherCA), hash: certHash(ca.cert.Raw), host: "127.0.0.1", wantErr: "none of the 2 certificates"},
		{name: "a server that sends no CA cannot prove it holds one",
			chain: raw(leaf), hash: certHash(ca.cert.Raw), host: "127.0.0.1", wantErr: "none of the 1 certificates"},
		{name: "a pinned leaf is not a CA",
			chain: raw(leaf, ca), hash: certHash(leaf.cert.Raw), host: "127.0.0.1", wantErr: "not a CA"},
		{name: "the right CA appended to another server's chain does not vouch for it",
			chain: raw(otherLeaf, ca), hash: certHash(ca.cert.Raw), host: "127.0.0.1", wantErr: "does not vouch"},
		{name: "a certificate for another host is refused",
			chain: raw(leaf, ca), hash: certHash(ca.cert.Raw), host: "10.9.9.9", wantErr: "does not vouch"},
		{name: "a client certificate does not serve",
			chain: raw(clientLeaf, ca), hash: certHash(ca.cert.Raw), host: "127.0.0.1", wantErr: "does not vouch"},
		{name: "an empty chain is refused",
			chain: nil, hash: certHash(ca.cert.Raw), host: "127.0.0.1", wantErr: "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifyPinnedChain(tt.chain, tt.hash, tt.host)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrCAMismatch)
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, ca.cert.Raw, got.Raw)
		})
	}
}

// recordingServer is a TLS server presenting chain that answers every request with 403 and
// records each request's Authorization header.
type recordingServer struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
}

func newRecordingServer(t *testing.T, leaf *testCert, chain ...*testCert) *recordingServer {
	t.Helper()
	s := &recordingServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`))
	}))
	cert := tls.Certificate{Certificate: [][]byte{leaf.cert.Raw}, PrivateKey: leaf.key}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.cert.Raw)
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// The handshakes the client aborts are expected; log them with the test.
	s.Config.ErrorLog = log.New(testLogWriter{t}, "test server: ", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (s *recordingServer) authorizations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

func TestJoinSendsNothingToAServerWithoutTheTokensCA(t *testing.T) {
	ca := newTestCA(t)
	impostorCA := newTestCA(t)
	tok := Token{CAHash: certHash(ca.cert.Raw), ID: "abcdef", Secret: testSecret}
	tests := []struct {
		name   string
		server func(t *testing.T) *recordingServer
	}{
		{name: "another CA", server: func(t *testing.T) *recordingServer {
			return newRecordingServer(t, newServingCert(t, impostorCA), impostorCA)
		}},
		{name: "the token's CA appended to another CA's chain", server: func(t *testing.T) *recordingServer {
			return newRecordingServer(t, newServingCert(t, impostorCA), impostorCA, ca)
		}},
		{name: "no CA in the chain", server: func(t *testing.T) *recordingServer {
			return newRecordingServer(t, newServingCert(t, ca))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.server(t)
			dir := filepath.Join(t.TempDir(), "agent")
			_, ctx := ktesting.NewTestContext(t)
			_, err := Join(ctx, srv.URL, tok, dir)
			require.ErrorIs(t, err, ErrCAMismatch)
			assert.ErrorContains(t, err, "the server's CA does not match the token's hash")
			assert.NotContains(t, err.Error(), tok.Secret)
			assert.Empty(t, srv.authorizations(), "requests reached the server")
			_, err = os.Stat(dir)
			assert.ErrorIs(t, err, os.ErrNotExist, "files were written for a server that failed the check")
		})
	}
}

func TestJoinSendsTheTokenOnlyAfterTheCACheck(t *testing.T) {
	ca := newTestCA(t)
	srv := newRecordingServer(t, newServingCert(t, ca), ca)
	tok := Token{CAHash: certHash(ca.cert.Raw), ID: "abcdef", Secret: testSecret}
	dir := t.TempDir()
	_, ctx := ktesting.NewTestContext(t)
	// The server forbids everything; Join retries that until ctx ends.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()

	_, err := Join(ctx, srv.URL, tok, dir)
	require.ErrorContains(t, err, "reading the agent config")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, apierrors.IsForbidden(err), "error %v", err)

	auths := srv.authorizations()
	require.NotEmpty(t, auths)
	for _, a := range auths {
		assert.Equal(t, "Bearer abcdef."+testSecret, a)
	}
	got, err := os.ReadFile(filepath.Join(dir, ServerCAFile))
	require.NoError(t, err)
	assert.Equal(t, ca.pem, got)
	fi, err := os.Stat(filepath.Join(dir, KubeletBootstrapKubeconfigFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the bootstrap kubeconfig holds the token")
}

func TestFetchServerCARefusesPlainHTTP(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	_, err := fetchServerCA(ctx, "http://127.0.0.1:6443", testHash)
	require.ErrorContains(t, err, "want https://")
}
