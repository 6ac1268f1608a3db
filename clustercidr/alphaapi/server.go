package alphaapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/clustercidr"
)

// Bounds of the server. A ClusterCIDR is small; kube-apiserver refuses bodies over 3 MiB
// and answers within a minute, or ends a watch within an hour.
const (
	maxRequestBody   = 3 << 20
	maxResponseBody  = 64 << 20
	maxInFlight      = 64
	requestTimeout   = time.Minute
	watchTimeout     = time.Hour
	shutdownTimeout  = 5 * time.Second
	readHeaderTimout = 10 * time.Second
)

// Options configure a Server.
type Options struct {
	// Upstream reaches kube-apiserver as a user that may impersonate any user, group and
	// user extra (the cluster admin): every request is made again as its own user.
	Upstream *rest.Config
	// RequestHeaderCA is the PEM bundle of the front-proxy CA that signs kube-apiserver's
	// --proxy-client-cert-file (its --requestheader-client-ca-file).
	RequestHeaderCA []byte
	// RequestHeaderAllowedNames are the common names accepted from that CA
	// (--requestheader-allowed-names); empty accepts any.
	RequestHeaderAllowedNames []string
}

// Server serves networking.k8s.io/v1alpha1 clustercidrs as an aggregated API server.
type Server struct {
	upstream  *url.URL
	client    *http.Client
	clientCAs *x509.CertPool
	allowed   []string
	inFlight  chan struct{}
}

// New returns a Server relaying to opts.Upstream.
func New(opts Options) (*Server, error) {
	if opts.Upstream == nil {
		return nil, errors.New("alphaapi: Upstream is required")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(opts.RequestHeaderCA) {
		return nil, errors.New("alphaapi: RequestHeaderCA holds no PEM certificate")
	}
	base, _, err := rest.DefaultServerUrlFor(opts.Upstream)
	if err != nil {
		return nil, fmt.Errorf("alphaapi: upstream address: %w", err)
	}
	client, err := rest.HTTPClientFor(opts.Upstream)
	if err != nil {
		return nil, fmt.Errorf("alphaapi: upstream client: %w", err)
	}
	return &Server{upstream: base, client: client, clientCAs: pool, allowed: opts.RequestHeaderAllowedNames,
		inFlight: make(chan struct{}, maxInFlight)}, nil
}

// TLSConfig serves cert and asks for (but leaves optional, for /healthz) a client
// certificate of the front-proxy CA.
func (s *Server) TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    s.clientCAs,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
	}
}

// Serve serves on ln with cert until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener, cert tls.Certificate) error {
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         s.TLSConfig(cert),
		ReadHeaderTimeout: readHeaderTimout,
		// No ReadTimeout or WriteTimeout: relay bounds the reading of each body itself, and
		// a watch streams for as long as its own timeout.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 1 << 20,
		BaseContext:    func(net.Listener) context.Context { return ctx },
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			_ = srv.Close()
		}
	}()
	err := srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	return err
}

const resourcePath = "/apis/" + alphaAPIVersion + "/" + clustercidr.Resource

// ServeHTTP answers health checks and, for kube-apiserver's front proxy only, discovery and
// the clustercidrs resource.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz", "/livez", "/readyz":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
		return
	}
	user, ok := frontProxyUser(r, s.allowed)
	if !ok {
		writeStatus(w, apierrors.NewUnauthorized("only kube-apiserver's front proxy may call this server"))
		return
	}
	select {
	case s.inFlight <- struct{}{}:
		defer func() { <-s.inFlight }()
	default:
		writeStatus(w, apierrors.NewTooManyRequests("too many requests in flight", 1))
		return
	}
	switch path := r.URL.Path; {
	case path == "/apis" || path == "/apis/":
		writeJSON(w, http.StatusOK, apiGroupList())
	case path == "/apis/"+Group || path == "/apis/"+Group+"/":
		writeJSON(w, http.StatusOK, apiGroup())
	case path == "/apis/"+alphaAPIVersion || path == "/apis/"+alphaAPIVersion+"/":
		writeJSON(w, http.StatusOK, resourceList())
	case path == resourcePath:
		s.relay(w, r, user, "")
	case strings.HasPrefix(path, resourcePath+"/") && !strings.Contains(path[len(resourcePath)+1:], "/") && len(path) > len(resourcePath)+1:
		s.relay(w, r, user, path[len(resourcePath)+1:])
	case path == "/openapi/v2":
		writeJSON(w, http.StatusOK, emptyOpenAPIV2)
	case path == "/openapi/v3":
		writeJSON(w, http.StatusOK, emptyOpenAPIV3)
	default:
		// No subresources: a ClusterCIDR has no status.
		writeStatus(w, apierrors.NewNotFound(schema.GroupResource{}, path))
	}
}

// The OpenAPI documents are empty on purpose. With a schema of ClusterCIDR, kubectl apply
// would send strategic merge patches, which a custom resource refuses; without one it sends
// JSON merge patches. Empty documents rather than 404s keep kube-apiserver from retrying and
// logging a failed download every minute.
var (
	emptyOpenAPIV2 = map[string]any{"swagger": "2.0", "info": map[string]any{"title": "k3snet ClusterCIDR " + alphaAPIVersion, "version": Version}, "paths": map[string]any{}}
	emptyOpenAPIV3 = map[string]any{"paths": map[string]any{}}
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.Status()
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	writeJSON(w, int(status.Code), &status)
}

func logger(r *http.Request) klog.Logger {
	return klog.FromContext(r.Context()).WithName("clustercidr-v1alpha1")
}
