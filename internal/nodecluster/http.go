package nodecluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/k3snet/k3snet/internal/netns"
)

// HTTPGet fetches url with a connection made inside ns (a node, a host on the LAN, the
// fabric) and returns the body of a 200 answer.
func HTTPGet(ns *netns.Namespace, url string) (string, error) {
	status, body, err := HTTPRequest(ns, url, "")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d", url, status)
	}
	return body, err
}

// HTTPRequest is one GET of url with a connection made inside ns; host, when set, is the Host
// header (a browser asking for that name at an address). It returns the status and body.
func HTTPRequest(ns *netns.Namespace, url, host string) (int, string, error) {
	var d net.Dialer
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var conn net.Conn
				err := ns.Do(func() error {
					var err error
					conn, err = d.DialContext(ctx, network, addr)
					return err
				})
				return conn, err
			},
		},
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}
