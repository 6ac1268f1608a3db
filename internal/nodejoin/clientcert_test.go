package nodejoin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReusableCert(t *testing.T) {
	ca := newTestCA(t)
	otherCA := newTestCA(t)
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	year := validity(start, start.AddDate(1, 0, 0))
	good := newClientCert(t, ca, KubeProxyUser, year)
	foreign := newClientCert(t, otherCA, KubeProxyUser, year)
	tests := []struct {
		name    string
		certPEM []byte
		keyPEM  []byte
		user    string
		now     time.Time
		wantErr string
	}{
		{name: "a fresh certificate is kept", certPEM: good.pem, keyPEM: good.keyPEM(t), user: KubeProxyUser, now: start.Add(time.Hour)},
		{name: "at 60% of its lifetime it is kept", certPEM: good.pem, keyPEM: good.keyPEM(t), user: KubeProxyUser,
			now: start.Add(time.Duration(0.6 * float64(365*24*time.Hour)))},
		{name: "with less than a third of its lifetime left it is renewed", certPEM: good.pem, keyPEM: good.keyPEM(t), user: KubeProxyUser,
			now: start.Add(time.Duration(0.7 * float64(365*24*time.Hour))), wantErr: "less than a third"},
		{name: "an expired certificate is renewed", certPEM: good.pem, keyPEM: good.keyPEM(t), user: KubeProxyUser,
			now: start.AddDate(2, 0, 0), wantErr: "less than a third"},
		{name: "a certificate not yet valid is renewed", certPEM: good.pem, keyPEM: good.keyPEM(t), user: KubeProxyUser,
			now: start.Add(-time.Hour), wantErr: "not valid before"},
		{name: "a certificate from another CA is renewed", certPEM: foreign.pem, keyPEM: foreign.keyPEM(t), user: KubeProxyUser,
			now: start.Add(time.Hour), wantErr: "not signed by the cluster CA"},
		{name: "a certificate for another user is renewed", certPEM: good.pem, keyPEM: good.keyPEM(t), user: ControllerUser,
			now: start.Add(time.Hour), wantErr: `names "system:kube-proxy"`},
		{name: "a key that is not the certificate's is renewed", certPEM: good.pem, keyPEM: newClientCert(t, ca, KubeProxyUser).keyPEM(t),
			user: KubeProxyUser, now: start.Add(time.Hour), wantErr: "does not match"},
		{name: "garbage is renewed", certPEM: []byte("x"), keyPEM: []byte("y"), user: KubeProxyUser, now: start, wantErr: "PEM data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reusableCert(tt.certPEM, tt.keyPEM, ca.cert, tt.user, tt.now)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errRenew)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}
