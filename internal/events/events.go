// Package events builds the Event recorder every k3snet controller uses: a broadcaster that
// writes Events to the API server and logs them, shut down when the controller's context ends.
package events

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// NewRecorder returns a recorder whose Events carry source, go to the API server through
// client and are logged at logLevel (a controller logs its decisions itself, so its Events
// usually sit a level or two below). The broadcaster stops when ctx ends.
func NewRecorder(ctx context.Context, client kubernetes.Interface, source corev1.EventSource, logLevel klog.Level) record.EventRecorder {
	return NewBroadcaster(ctx, client, logLevel).NewRecorder(scheme.Scheme, source)
}

// NewBroadcaster is the broadcaster behind NewRecorder, for a controller that records Events
// under more than one source: each of its recorders shares the one sink.
func NewBroadcaster(ctx context.Context, client kubernetes.Interface, logLevel klog.Level) record.EventBroadcaster {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(logLevel)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	context.AfterFunc(ctx, broadcaster.Shutdown)
	return broadcaster
}

// Drain returns the Events a FakeRecorder has buffered so far, for unit tests that check what
// a sync announced.
func Drain(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
