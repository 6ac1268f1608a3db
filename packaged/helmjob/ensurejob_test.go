package helmjob

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// A job the cache has not seen yet makes Create answer AlreadyExists: the sync goes on with
// the live job instead of failing.
func TestEnsureJobFindsAJobTheCacheHasNotSeen(t *testing.T) {
	in := Inputs{Chart: traefikChart(), Deleting: true} // an uninstall reads no release records
	objs := build(t, in)
	live := objs.Job.DeepCopy()
	live.UID = "live"
	client := fake.NewClientset(live)
	c := &Controller{client: client, recorder: record.NewFakeRecorder(10),
		jobs: batchlisters.NewJobLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}))}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("helm.cattle.io/v1")
	u.SetKind("HelmChart")
	u.SetName("traefik")
	u.SetNamespace("kube-system")

	job, err := c.ensureJob(testContext(t), u, in, objs, ReasonRemoveJob)
	require.NoError(t, err)
	assert.Equal(t, "live", string(job.UID))
	jobs, err := client.BatchV1().Jobs("kube-system").List(testContext(t), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, jobs.Items, 1)
}
