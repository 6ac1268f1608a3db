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
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}
