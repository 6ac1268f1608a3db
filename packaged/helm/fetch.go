package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	"oras.land/oras-go/v2/registry/remote/auth"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// defaultDownloadTimeout bounds one download (an index, an archive, a registry pull).
const defaultDownloadTimeout = 60 * time.Second

// chartCacheBytes bounds the archives the fetcher keeps, counted once per key they are
// stored under. Charts are tens or hundreds of KiB and a server installs a handful, so a
// re-sync (a values change, a restart of a worker, a retry after a failed install) normally
// finds its archive here, while a few charts near Helm's size limit cannot hold the memory
// of a download budget each.
const chartCacheBytes = 64 << 20

// fetchAuth is how to reach a repository or registry: the HelmChart's TLS and credential
// fields with the Secrets and ConfigMaps they name already read.
type fetchAuth struct {
	// username and password come from authSecret (or dockerRegistrySecret for OCI).
	username, password string
	// certPEM and keyPEM are authSecret's tls.crt and tls.key: a client certificate.
	certPEM, keyPEM []byte
	// caPEM is repoCA followed by every key of repoCAConfigMap. When set it replaces the
	// system roots, as K3s's job passes it to helm as --ca-file.
	caPEM []byte
	// passCredentials sends the credentials to hosts other than the repository's
	// (authPassCredentials), e.g. an index whose archives sit on a CDN.
	passCredentials bool
	// insecureSkipTLSVerify and plainHTTP are the HelmChart fields of the same names.
	insecureSkipTLSVerify, plainHTTP bool
}

// fingerprint identifies a in cache keys, so an archive fetched with one HelmChart's
// credentials is never handed to a HelmChart that lacks them.
func (a fetchAuth) fingerprint() string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(a.username), []byte(a.password), a.certPEM, a.keyPEM, a.caPEM,
		[]byte(fmt.Sprint(a.passCredentials, a.insecureSkipTLSVerify, a.plainHTTP))} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// defaultMaxDownloadBytes bounds what one fetch reads from the network: the index, the
// archive, a registry's manifests and blobs, with their HTTP and TLS overhead. Helm's getter
// keeps a whole body in memory, so a server that streams without end would otherwise grow
// the process until it dies. Helm's loader refuses charts over 100 MiB once decompressed;
// the index of a big repository is tens of MiB.
const defaultMaxDownloadBytes = 256 << 20

// errDownloadTooLarge ends a fetch that read more than its byte budget.
var errDownloadTooLarge = errors.New("download too large")

// chartFetcher downloads chart archives with the Helm SDK: its HTTP getter for URLs and
// repositories, its registry client for OCI. It is safe for concurrent use by the workers.
type chartFetcher struct {
	timeout time.Duration
	// maxBytes is the byte budget of one fetch (defaultMaxDownloadBytes).
	maxBytes int64
	cache    *archiveCache
	// staticDir is the K3s server's static directory (Options.StaticDir), or "".
	staticDir string
}

// newChartFetcher returns a fetcher whose downloads each take at most timeout, and which
// reads static charts from staticDir ("" for none).
func newChartFetcher(timeout time.Duration, staticDir string) *chartFetcher {
	return &chartFetcher{timeout: timeout, maxBytes: defaultMaxDownloadBytes, cache: newArchiveCache(chartCacheBytes), staticDir: staticDir}
}

// fetch returns the chart src names, loaded, and its archive. Sources are URL, repository,
// OCI and static files; inline charts never reach the fetcher. An archive is cached only
// once it loaded: a server that once answered with an error page instead of the archive
// must not fail every retry until a restart.
func (f *chartFetcher) fetch(src chartSource, a fetchAuth) (*chart.Chart, []byte, error) {
	data, keys, err := f.download(src, a)
	if err != nil {
		return nil, nil, err
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s: %w", src, err)
	}
	f.cache.put(data, keys...)
	return ch, data, nil
}

// download returns the archive src names, from the cache or the source, and the cache
// keys to store it under once it loaded.
func (f *chartFetcher) download(src chartSource, a fetchAuth) ([]byte, []string, error) {
	if src.kind == sourceStatic {
		data, err := f.readStatic(src.ref)
		return data, nil, err
	}
	tr, err := newTransport(a)
	if err != nil {
		return nil, nil, err
	}
	// Helm's getter takes a *http.Transport, not a RoundTripper, so the budget is kept by
	// the transport's connections.
	limitReads(tr, f.maxBytes)
	// A transport per fetch carries that HelmChart's TLS settings; close its connections
	// so that none outlives the fetch.
	defer tr.CloseIdleConnections()
	switch src.kind {
	case sourceURL:
		return f.fetchURL(src.ref, a, tr)
	case sourceRepo:
		return f.fetchFromRepo(src, a, tr)
	case sourceOCI:
		return f.fetchOCI(src, a, tr)
	}
	return nil, nil, fmt.Errorf("%w: %s", errUnsupportedChartSource, src.kind)
}

// httpGetter returns Helm's HTTP getter for base. Credentials go to base's host only,
// unless passCredentials (Helm's rule, and what authPassCredentials means).
func (f *chartFetcher) httpGetter(base string, a fetchAuth, tr *http.Transport) (getter.Getter, error) {
	opts := []getter.Option{
		getter.WithURL(base),
		getter.WithTimeout(f.timeout),
		getter.WithTransport(tr),
		getter.WithPassCredentialsAll(a.passCredentials),
	}
	if a.username != "" || a.password != "" {
		opts = append(opts, getter.WithBasicAuth(a.username, a.password))
	}
	g, err := getter.NewHTTPGetter(opts...)
	if err != nil {
		return nil, fmt.Errorf("building an HTTP getter for %s: %w", base, err)
	}
	return g, nil
}

// fetchURL downloads the archive at chartURL. The URL is the cache key: like K3s, which
// reinstalls only when the HelmChart changes, k3snet does not poll a URL for new content.
func (f *chartFetcher) fetchURL(chartURL string, a fetchAuth, tr *http.Transport) ([]byte, []string, error) {
	key := cacheKey("url", chartURL, a.fingerprint())
	if data, ok := f.cache.get(key); ok {
		return data, nil, nil
	}
	g, err := f.httpGetter(chartURL, a, tr)
	if err != nil {
		return nil, nil, err
	}
	buf, err := g.Get(chartURL)
	if err != nil {
		return nil, nil, fmt.Errorf("downloading chart %s: %w", redactCredentials(chartURL), err)
	}
	return buf.Bytes(), []string{key}, nil
}

// fetchFromRepo reads the repository's index.yaml, picks the chart version as helm does
// (an exact version, else the newest matching the constraint, else the newest stable) and
// downloads its archive unless the cache holds that URL, version and digest.
//
// The archive is also cached under the request (repository, name, version), so a re-sync
// of an unchanged HelmChart neither reads the index nor fails while the repository is
// away. A newer version matching the request is thus picked up when the request changes
// or the controller restarts; K3s's job, too, resolves the version only when the
// HelmChart changes.
func (f *chartFetcher) fetchFromRepo(src chartSource, a fetchAuth, tr *http.Transport) ([]byte, []string, error) {
	request := cacheKey("repo-request", src.repo, src.ref, src.version, a.fingerprint())
	if data, ok := f.cache.get(request); ok {
		return data, nil, nil
	}
	g, err := f.httpGetter(src.repo, a, tr)
	if err != nil {
		return nil, nil, err
	}
	indexURL, err := repo.ResolveReferenceURL(src.repo, "index.yaml")
	if err != nil {
		return nil, nil, fmt.Errorf("repository %s: %w", redactCredentials(src.repo), err)
	}
	buf, err := g.Get(indexURL)
	if err != nil {
		return nil, nil, fmt.Errorf("downloading the index of repository %s: %w", redactCredentials(src.repo), err)
	}
	idx, err := parseIndex(buf.Bytes())
	if err != nil {
		return nil, nil, fmt.Errorf("reading the index of repository %s: %w", redactCredentials(src.repo), err)
	}
	cv, err := idx.Get(src.ref, src.version)
	if err != nil {
		return nil, nil, fmt.Errorf("chart %q version %q in repository %s: %w", src.ref, src.version, redactCredentials(src.repo), err)
	}
	if len(cv.URLs) == 0 {
		return nil, nil, fmt.Errorf("chart %q version %s in repository %s has no URL", src.ref, cv.Version, redactCredentials(src.repo))
	}
	chartURL, err := repo.ResolveReferenceURL(src.repo, cv.URLs[0])
	if err != nil {
		return nil, nil, fmt.Errorf("chart %q version %s in repository %s: %w", src.ref, cv.Version, redactCredentials(src.repo), err)
	}
	key := cacheKey("repo", chartURL, cv.Version, cv.Digest, a.fingerprint())
	if data, ok := f.cache.get(key); ok {
		return data, []string{request}, nil
	}
	buf, err = g.Get(chartURL)
	if err != nil {
		return nil, nil, fmt.Errorf("downloading chart %q version %s: %w", src.ref, cv.Version, err)
	}
	// The index states the archive's digest; a mismatch is a broken or tampered mirror.
	if got := sha256Hex(buf.Bytes()); cv.Digest != "" && got != cv.Digest {
		return nil, nil, fmt.Errorf("chart %q version %s from %s has digest %s, the index says %s",
			src.ref, cv.Version, redactCredentials(chartURL), got, cv.Digest)
	}
	return buf.Bytes(), []string{key, request}, nil
}

// parseIndex decodes a repository index as Helm does: entries sorted newest first, empty
// entries dropped, an apiVersion required.
func parseIndex(data []byte) (*repo.IndexFile, error) {
	idx := &repo.IndexFile{}
	if err := yaml.Unmarshal(data, idx); err != nil {
		return nil, err
	}
	if idx.APIVersion == "" {
		return nil, repo.ErrNoAPIVersion
	}
	for name, versions := range idx.Entries {
		idx.Entries[name] = slices.DeleteFunc(versions, func(cv *repo.ChartVersion) bool {
			return cv == nil || cv.Metadata == nil
		})
	}
	idx.SortEntries()
	return idx, nil
}

// fetchOCI pulls the chart from its registry with Helm's registry client. The client gets
// its own authorizer with only the HelmChart's credentials: the server's docker and helm
// logins must not serve every namespace's HelmCharts. The archive is cached under the
// request and under the resolved reference, as fetchFromRepo does.
func (f *chartFetcher) fetchOCI(src chartSource, a fetchAuth, tr *http.Transport) ([]byte, []string, error) {
	request := cacheKey("oci-request", src.ref, src.version, a.fingerprint())
	if data, ok := f.cache.get(request); ok {
		return data, nil, nil
	}
	u, err := url.Parse(src.ref)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: chart %q: %v", errUnsupportedChartSource, src.ref, err)
	}
	httpClient := &http.Client{Transport: tr, Timeout: f.timeout}
	authorizer := auth.Client{Client: httpClient, Cache: auth.NewCache()}
	if a.username != "" || a.password != "" {
		authorizer.Credential = auth.StaticCredential(u.Host, auth.Credential{Username: a.username, Password: a.password})
	}
	opts := []registry.ClientOption{
		registry.ClientOptHTTPClient(httpClient),
		registry.ClientOptAuthorizer(authorizer),
		registry.ClientOptWriter(io.Discard),
	}
	if a.plainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("building a registry client: %w", err)
	}
	// ValidateReference resolves the version as the helm CLI does: the reference's tag or
	// digest, an exact version, or the newest tag matching a constraint.
	resolved, err := client.ValidateReference(src.ref, src.version, u)
	if err != nil {
		return nil, nil, fmt.Errorf("resolving %s version %q: %w", src.ref, src.version, err)
	}
	ref := strings.TrimPrefix(resolved.String(), registry.OCIScheme+"://")
	key := cacheKey("oci", ref, a.fingerprint())
	if data, ok := f.cache.get(key); ok {
		return data, []string{request}, nil
	}
	res, err := client.Pull(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return res.Chart.Data, []string{key, request}, nil
}

// newTransport builds the HTTP transport for one fetch: proxies from the environment and
// the TLS settings of a.
func newTransport(a fetchAuth) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A .tgz served with Content-Encoding gzip must reach the loader still compressed, as
	// Helm's own transport leaves it.
	tr.DisableCompression = true
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: a.insecureSkipTLSVerify} // the user's choice (insecureSkipTLSVerify)
	if len(a.caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(a.caPEM) {
			return nil, errors.New("repoCA and repoCAConfigMap hold no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if len(a.certPEM) > 0 || len(a.keyPEM) > 0 {
		cert, err := tls.X509KeyPair(a.certPEM, a.keyPEM)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate of authSecret (tls.crt, tls.key): %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr.TLSClientConfig = cfg
	return tr, nil
}

// readStatic reads a chart from the static directory. Not cached: the file is local, and a
// K3s upgrade rewrites it in place.
func (f *chartFetcher) readStatic(path string) ([]byte, error) {
	if f.staticDir == "" {
		return nil, fmt.Errorf("%w: no static directory for %s", errUnsupportedChartSource, path)
	}
	return helmchart.ReadStatic(f.staticDir, path, f.maxBytes)
}

// limitReads makes every connection tr dials count its reads against one budget of max
// bytes, shared by the fetch's requests; past it, reads fail with errDownloadTooLarge.
func limitReads(tr *http.Transport, max int64) {
	budget := &atomic.Int64{}
	budget.Store(max)
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &budgetConn{Conn: conn, left: budget, max: max}, nil
	}
}

// budgetConn is a connection whose reads draw on a shared byte budget.
type budgetConn struct {
	net.Conn
	left *atomic.Int64
	max  int64
}

func (c *budgetConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.left.Add(-int64(n)) < 0 {
		return n, fmt.Errorf("%w: more than %d MiB read", errDownloadTooLarge, c.max>>20)
	}
	return n, err
}

// sha256Hex is the hex SHA-256 of data, the digest form of a repository index.
func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// cacheKey hashes parts, each ended by a NUL byte, which no URL or version contains, so
// distinct part lists never share a key.
func cacheKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// archiveCache keeps the newest archives that loaded, evicting the oldest entries once
// their bytes pass max.
type archiveCache struct {
	mu      sync.Mutex
	max     int64
	used    int64
	entries map[string][]byte
	order   []string // keys, oldest first
}

// newArchiveCache returns a cache of at most max bytes.
func newArchiveCache(max int64) *archiveCache {
	return &archiveCache{max: max, entries: map[string][]byte{}}
}

// get returns the archive stored under key.
func (c *archiveCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, ok := c.entries[key]
	return data, ok
}

// put stores data under each of keys (the newest entries), then evicts the oldest entries
// until the cache holds at most max bytes. An archive larger than max is not kept.
func (c *archiveCache) put(data []byte, keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(len(data)) > c.max {
		return
	}
	for _, key := range keys {
		if old, ok := c.entries[key]; ok {
			c.used -= int64(len(old))
			c.order = slices.DeleteFunc(c.order, func(k string) bool { return k == key })
		}
		c.entries[key] = data
		c.used += int64(len(data))
		c.order = append(c.order, key)
	}
	for c.used > c.max {
		oldest := c.order[0]
		c.used -= int64(len(c.entries[oldest]))
		delete(c.entries, oldest)
		c.order = c.order[1:]
	}
}
