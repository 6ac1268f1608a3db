package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseServe(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    serveConfig
		wantErr bool
	}{
		{name: "no flag serves HTTP on 8080", want: serveConfig{httpPort: 8080}},
		{name: "both ports are set", args: []string{"--http-port", "80", "--udp-port=53"}, want: serveConfig{httpPort: 80, udpPort: 53}},
		{name: "UDP alone turns HTTP off with port 0", args: []string{"--http-port", "0", "--udp-port", "53"}, want: serveConfig{udpPort: 53}},
		{name: "nothing to serve is bad usage", args: []string{"--http-port", "0"}, wantErr: true},
		{name: "a port above 65535 is bad usage", args: []string{"--udp-port", "70000"}, wantErr: true},
		{name: "an argument is bad usage", args: []string{"extra"}, wantErr: true},
		{name: "an unknown flag is bad usage", args: []string{"--tcp-port", "1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServe(tt.args)
			if tt.wantErr {
				require.ErrorIs(t, err, errUsage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseGet(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    getConfig
		wantErr bool
	}{
		{name: "a URL gets the default timeout", args: []string{"http://svc/"}, want: getConfig{url: "http://svc/", timeout: defaultTimeout}},
		{name: "the timeout may follow the URL", args: []string{"http://svc/", "--timeout", "2s"}, want: getConfig{url: "http://svc/", timeout: 2 * time.Second}},
		{name: "the timeout may precede the URL", args: []string{"-timeout=1s", "https://svc/x"}, want: getConfig{url: "https://svc/x", timeout: time.Second}},
		{name: "a URL after -- is taken as is", args: []string{"--", "http://svc/--timeout"}, want: getConfig{url: "http://svc/--timeout", timeout: defaultTimeout}},
		{name: "no URL is bad usage", wantErr: true},
		{name: "two URLs are bad usage", args: []string{"http://a/", "http://b/"}, wantErr: true},
		{name: "a URL without scheme is bad usage", args: []string{"svc:80"}, wantErr: true},
		{name: "a zero timeout is bad usage", args: []string{"http://a/", "--timeout", "0s"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseGet(tt.args)
			if tt.wantErr {
				require.ErrorIs(t, err, errUsage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseLookup(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    lookupConfig
		wantErr bool
	}{
		{name: "a name is looked up with the default timeout", args: []string{"kubernetes.default"}, want: lookupConfig{name: "kubernetes.default", timeout: defaultTimeout}},
		{name: "the timeout is read", args: []string{"a", "--timeout=3s"}, want: lookupConfig{name: "a", timeout: 3 * time.Second}},
		{name: "no name is bad usage", wantErr: true},
		{name: "an empty name is bad usage", args: []string{""}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLookup(tt.args)
			if tt.wantErr {
				require.ErrorIs(t, err, errUsage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseConnect(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    connectConfig
		wantErr bool
	}{
		{name: "TCP is the default", args: []string{"10.0.0.1:80"}, want: connectConfig{addr: "10.0.0.1:80", timeout: defaultTimeout}},
		{name: "--udp after the address is read", args: []string{"svc:53", "--udp"}, want: connectConfig{addr: "svc:53", udp: true, timeout: defaultTimeout}},
		{name: "an IPv6 address is accepted", args: []string{"--udp", "[fd00::1]:53"}, want: connectConfig{addr: "[fd00::1]:53", udp: true, timeout: defaultTimeout}},
		{name: "an address without port is bad usage", args: []string{"10.0.0.1"}, wantErr: true},
		{name: "a named port is bad usage", args: []string{"svc:http"}, wantErr: true},
		{name: "an address without host is bad usage", args: []string{":80"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConnect(tt.args)
			if tt.wantErr {
				require.ErrorIs(t, err, errUsage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
