package helm

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
)

// fail records a failure: condition Failed True, a log line, and a Warning Event with the
// same reason when the condition changed (emit on change: a retry that fails the same way
// stays quiet). It returns retryErr, nil for a permanent failure that waits for a change.
func (c *Controller) fail(ctx context.Context, u *unstructured.Unstructured, reason, message string, retryErr error) error {
	message, retryErr = redactCredentials(message), redactError(retryErr)
	klog.FromContext(ctx).Info("HelmChart failed", "reason", reason, "message", message)
	changed, err := c.setFailed(ctx, u, true, reason, message)
	if err != nil {
		return errors.Join(retryErr, err)
	}
	if changed {
		c.recorder.Event(u, corev1.EventTypeWarning, reason, message)
	}
	return retryErr
}

// setFailed writes condition Failed through the status subresource when it differs, and
// reports whether it wrote. K3s also writes JobCreated and jobName, which have no meaning
// without a job.
func (c *Controller) setFailed(ctx context.Context, u *unstructured.Unstructured, failed bool, reason, message string) (bool, error) {
	status := metav1.ConditionFalse
	if failed {
		status = metav1.ConditionTrue
	}
	want := map[string]any{"type": ConditionFailed, "status": string(status), "reason": reason, "message": message}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	out := make([]any, 0, len(conds)+1)
	for _, cond := range conds {
		if m, ok := cond.(map[string]any); ok && m["type"] == ConditionFailed {
			if equalCondition(m, want) {
				return false, nil
			}
			continue
		}
		out = append(out, cond)
	}
	out = append(out, want)
	cp := u.DeepCopy()
	if err := unstructured.SetNestedSlice(cp.Object, out, "status", "conditions"); err != nil {
		return false, fmt.Errorf("setting HelmChart %s/%s conditions: %w", u.GetNamespace(), u.GetName(), err)
	}
	if _, err := c.dyn.Resource(HelmChartResource()).Namespace(u.GetNamespace()).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("updating HelmChart %s/%s status: %w", u.GetNamespace(), u.GetName(), err)
	}
	return true, nil
}

// equalCondition compares the fields setFailed writes.
func equalCondition(a, b map[string]any) bool {
	for _, k := range []string{"type", "status", "reason", "message"} {
		av, _ := a[k].(string)
		bv, _ := b[k].(string)
		if av != bv {
			return false
		}
	}
	return true
}
