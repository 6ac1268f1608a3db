package nodejoin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/internal/events"
)

// approverFixture is an Approver on a fake clientset, its lister preloaded with one CSR.
type approverFixture struct {
	approver *Approver
	client   *fake.Clientset
	recorder *record.FakeRecorder
}

func newApproverFixture(t *testing.T, csr *certificatesv1.CertificateSigningRequest) *approverFixture {
	t.Helper()
	client := fake.NewClientset(csr)
	a, err := NewApprover(client, ApproverOptions{})
	require.NoError(t, err)
	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Certificates().V1().CertificateSigningRequests()
	require.NoError(t, informer.Informer().GetIndexer().Add(csr))
	a.csrs = informer.Lister()
	recorder := record.NewFakeRecorder(10)
	a.recorder = recorder
	client.ClearActions()
	return &approverFixture{approver: a, client: client, recorder: recorder}
}

func (f *approverFixture) sync(t *testing.T, name string) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	require.NoError(t, f.approver.syncCSR(ctx, cache.ObjectName{Name: name}))
}

// approvalWrite returns the one write the sync made, which must be an update of the
// approval subresource, and the condition it added.
func (f *approverFixture) approvalWrite(t *testing.T) certificatesv1.CertificateSigningRequestCondition {
	t.Helper()
	actions := f.client.Actions()
	require.Len(t, actions, 1, "actions: %v", actions)
	update, ok := actions[0].(core.UpdateAction)
	require.True(t, ok, "action %v is not an update", actions[0])
	assert.Equal(t, "approval", update.GetSubresource())
	csr := update.GetObject().(*certificatesv1.CertificateSigningRequest)
	require.Len(t, csr.Status.Conditions, 1)
	return csr.Status.Conditions[0]
}

func TestSyncApprovesThroughTheApprovalSubresource(t *testing.T) {
	f := newApproverFixture(t, makeCSR(t))
	f.sync(t, "csr-test")
	c := f.approvalWrite(t)
	assert.Equal(t, certificatesv1.CertificateApproved, c.Type)
	assert.Equal(t, corev1.ConditionTrue, c.Status)
	assert.Equal(t, ReasonAutoApproved, c.Reason)
	assert.Empty(t, events.Drain(f.recorder))
}

func TestSyncDeniesWithAWarning(t *testing.T) {
	f := newApproverFixture(t, makeCSR(t, organization("system:masters")))
	f.sync(t, "csr-test")
	c := f.approvalWrite(t)
	assert.Equal(t, certificatesv1.CertificateDenied, c.Type)
	assert.Equal(t, ReasonOrganizationNotAllowed, c.Reason)
	got := events.Drain(f.recorder)
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "Warning "+ReasonOrganizationNotAllowed)
}

func TestSyncLeavesOthersAlone(t *testing.T) {
	tests := []struct {
		name string
		csr  []csrTweak
	}{
		{name: "another signer", csr: []csrTweak{signer(certificatesv1.KubeAPIServerClientKubeletSignerName)}},
		{name: "another user", csr: []csrTweak{commonName("system:admin"), organization("system:masters")}},
		{name: "already approved", csr: []csrTweak{condition(certificatesv1.CertificateApproved)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newApproverFixture(t, makeCSR(t, tt.csr...))
			f.sync(t, "csr-test")
			assert.Empty(t, f.client.Actions())
			assert.Empty(t, events.Drain(f.recorder))
		})
	}
}

func TestSyncOfADeletedCSRDoesNothing(t *testing.T) {
	f := newApproverFixture(t, makeCSR(t))
	f.sync(t, "gone")
	assert.Empty(t, f.client.Actions())
}

func TestHandlersQueueOnlyUndecidedCSRsOfTheSigner(t *testing.T) {
	a, err := NewApprover(fake.NewClientset(), ApproverOptions{})
	require.NoError(t, err)
	a.enqueueCSR(makeCSR(t, signer(certificatesv1.KubeAPIServerClientKubeletSignerName)))
	a.enqueueCSR(makeCSR(t, condition(certificatesv1.CertificateDenied)))
	assert.Equal(t, 0, a.queue.Len())

	csr := makeCSR(t)
	a.handleCSRUpdate(csr, csr)
	assert.Equal(t, 0, a.queue.Len(), "a resync was queued")
	changed := csr.DeepCopy()
	changed.ResourceVersion = "2"
	a.handleCSRUpdate(csr, changed)
	assert.Equal(t, 1, a.queue.Len())
}

func TestApproverOptions(t *testing.T) {
	_, err := NewApprover(fake.NewClientset(), ApproverOptions{Workers: -1})
	require.ErrorContains(t, err, "Workers")
	_, err = NewApprover(nil, ApproverOptions{})
	require.Error(t, err)
}
