// Package k3sflags parses the K3s server flags that examples/k3slike and cmd/k3snet share,
// with K3s's names, defaults and value forms: repeatable comma lists, one CIDR per IP family,
// the cluster DNS address defaulting into the service CIDR. Every error names its flag, so a
// binary can print it as one line that says what to fix.
package k3sflags
