package packaged

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
)

func TestFailuresSendAWarningOnlyWhenTheMessageChanges(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	rec := record.NewFakeRecorder(10)
	c := &Controller{recorder: rec, files: map[string]fileState{}}
	f := manifestFile{rel: "a.yaml", path: "/m/a.yaml"}
	addon := &unstructured.Unstructured{}
	addon.SetAPIVersion(addonAPIVersion)
	addon.SetKind(addonKind)
	addon.SetName("a")

	steps := []struct {
		err       error
		wantEvent string
	}{
		{err: errors.New("boom"), wantEvent: `Warning ParseManifestFailed Parsing manifest at "/m/a.yaml" failed: boom`},
		{err: errors.New("boom")},
		{err: errors.New("other"), wantEvent: `Warning ParseManifestFailed Parsing manifest at "/m/a.yaml" failed: other`},
	}
	for i, s := range steps {
		err := c.failed(ctx, f, addon, ReasonParseManifestFailed, "Parsing", s.err)
		assert.ErrorIs(t, err, s.err, "step %d: the cause is wrapped", i)
		select {
		case got := <-rec.Events:
			assert.Equal(t, s.wantEvent, got, "step %d", i)
		default:
			assert.Empty(t, s.wantEvent, "step %d: no Event", i)
		}
	}

	c.succeeded(f, timeNow())
	_ = c.failed(ctx, f, addon, ReasonParseManifestFailed, "Parsing", errors.New("other"))
	assert.Len(t, rec.Events, 1, "after a success the same failure is news again")
}
