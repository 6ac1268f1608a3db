package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/packaged/helm"
)

func TestExitStatuses(t *testing.T) {
	good := map[string]string{"NAME": "x", "CHART_NAMESPACE": "kube-system"}
	withEnv := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return good[k]
		}
	}
	config := func() (*rest.Config, error) { return &rest.Config{Host: "https://127.0.0.1:1"}, nil }
	noCluster := func() (*rest.Config, error) { return nil, errors.New("not in a cluster") }
	tests := []struct {
		name       string
		args       []string
		getenv     func(string) string
		config     func() (*rest.Config, error)
		want       int
		wantStderr string
	}{
		{"a bad environment", []string{"install"}, withEnv(map[string]string{"NAME": ""}), config, exitBadUsage, "klipper-helm: invalid environment: NAME is empty\n"},
		{"bad arguments", []string{"upgrade"}, withEnv(nil), config, exitBadUsage, "klipper-helm: unknown command \"upgrade\": want install or delete\n"},
		{"no cluster", []string{"install"}, withEnv(nil), noCluster, exitFailed, "klipper-helm: reaching the API server: not in a cluster\n"},
		{"helm v2, refused before the cluster is reached", []string{"install"}, withEnv(map[string]string{"HELM_VERSION": "v2"}), noCluster, exitHelmV2, "klipper-helm: helm v2 is no longer supported\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(context.Background(), tt.args, tt.getenv, tt.config, helm.JobPaths{}, &stdout, &stderr)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantStderr, stderr.String())
			assert.Empty(t, stdout.String())
		})
	}
}
