package alphaapi

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Front-proxy headers: kube-apiserver names the user it authenticated in these when it
// proxies a request to an aggregated API server (its --requestheader-*-headers flags).
const (
	userHeader        = "X-Remote-User"
	groupHeader       = "X-Remote-Group"
	extraHeaderPrefix = "X-Remote-Extra-"
)

// remoteUser is the user a request was made by, as kube-apiserver authenticated it.
type remoteUser struct {
	name   string
	groups []string
	extra  map[string][]string
}

// frontProxyUser returns the user named in r's front-proxy headers when r came with a client
// certificate that chains to the front-proxy CA (the TLS handshake verified it) and names one
// of allowedNames (any name when empty, as kube-apiserver's --requestheader-allowed-names).
// Headers from any other client are someone claiming to be whoever they like.
func frontProxyUser(r *http.Request, allowedNames []string) (remoteUser, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return remoteUser{}, false
	}
	if !allowedName(r.TLS.VerifiedChains[0][0], allowedNames) {
		return remoteUser{}, false
	}
	u := remoteUser{name: r.Header.Get(userHeader), groups: r.Header.Values(groupHeader)}
	if u.name == "" {
		return remoteUser{}, false
	}
	for name, values := range r.Header {
		// Go canonicalizes header names; the key is lower case and may be percent-encoded.
		if len(name) <= len(extraHeaderPrefix) || !strings.EqualFold(name[:len(extraHeaderPrefix)], extraHeaderPrefix) {
			continue
		}
		key, err := url.PathUnescape(strings.ToLower(name[len(extraHeaderPrefix):]))
		if err != nil {
			continue
		}
		if u.extra == nil {
			u.extra = map[string][]string{}
		}
		u.extra[key] = append(u.extra[key], values...)
	}
	return u, true
}

func allowedName(cert *x509.Certificate, allowed []string) bool {
	return len(allowed) == 0 || slices.Contains(allowed, cert.Subject.CommonName)
}

// impersonate sets the headers that make kube-apiserver act on req as u.
func (u remoteUser) impersonate(req *http.Request) {
	req.Header.Set("Impersonate-User", u.name)
	for _, g := range u.groups {
		req.Header.Add("Impersonate-Group", g)
	}
	for key, values := range u.extra {
		for _, v := range values {
			req.Header.Add("Impersonate-Extra-"+escapeHeaderKey(key), v)
		}
	}
}

// escapeHeaderKey percent-encodes what a header name cannot hold (an extra's key is often a
// domain-qualified name with "/"); kube-apiserver unescapes it.
func escapeHeaderKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if isTokenChar(c) && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hexByte(c)))
	}
	return b.String()
}

func hexByte(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}

// isTokenChar is RFC 7230's tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&'*+-.^_`|~", c) >= 0
}
