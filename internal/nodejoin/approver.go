package nodejoin

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certificateslisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/events"
	"github.com/k3snet/k3snet/internal/workloop"
)

const (
	// approverComponent is the source of the Approver's Events.
	approverComponent = "k3snet-csr-approver"
	// approverQueueName names the work queue in workqueue metrics and logs.
	approverQueueName = "nodejoin-csr"
)

// ApproverOptions configures the Approver. The zero value is ready to use.
type ApproverOptions struct {
	// Workers is how many CSRs are decided at once; 0 means 1.
	Workers int
}

// Validate reports every invalid field at once.
func (o ApproverOptions) Validate() error {
	var errs []error
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("option Workers: %d is negative", o.Workers))
	}
	return errors.Join(errs...)
}

func (o ApproverOptions) withDefaults() ApproverOptions {
	if o.Workers == 0 {
		o.Workers = 1
	}
	return o
}

// Approver approves the kubernetes.io/kube-apiserver-client CSRs that agents create for
// kube-proxy and their node-local controllers, and denies requests for those identities that
// ask for more (see decide); kube-controller-manager then signs the approved ones. It leaves
// every other CSR alone. Build it with NewApprover and run it with Start; its client needs
// ApproverClusterRole.
type Approver struct {
	// client writes CSR approvals and Events.
	client kubernetes.Interface
	// opts are the validated options with defaults filled in.
	opts ApproverOptions

	// csrs reads CSRs from the shared informer's cache; csrsSynced reports whether this
	// controller's handler has seen the initial list. Both are set by Start.
	csrs       certificateslisters.CertificateSigningRequestLister
	csrsSynced cache.InformerSynced

	// queue holds the names of CSRs to decide; a name is in it at most once.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// recorder sends Events on CSRs; Start builds it unless a test set it.
	recorder record.EventRecorder
	// started makes a second Start an error instead of a second set of workers.
	started atomic.Bool
}

// NewApprover returns an Approver that talks to the API server through client; nothing runs
// until Start.
func NewApprover(client kubernetes.Interface, opts ApproverOptions) (*Approver, error) {
	if client == nil {
		return nil, errors.New("nodejoin: nil client")
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("nodejoin: invalid approver options: %w", err)
	}
	return &Approver{
		client: client,
		opts:   opts.withDefaults(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: approverQueueName},
		),
	}, nil
}

// Start registers the CSR informer on factory, starts the factory (which is idempotent, so
// controllers can share one), waits for the cache, launches the workers and returns; the
// workers stop when ctx ends.
func (a *Approver) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("nodejoin: Approver.Start called twice")
	}
	logger := klog.FromContext(ctx).WithName("csr-approver")
	ctx = klog.NewContext(ctx, logger)

	csrs := factory.Certificates().V1().CertificateSigningRequests()
	reg, err := csrs.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    a.enqueueCSR,
		UpdateFunc: a.handleCSRUpdate,
	}, cache.HandlerOptions{Logger: &logger})
	if err != nil {
		return fmt.Errorf("nodejoin: adding the CSR event handler: %w", err)
	}
	a.csrs = csrs.Lister()
	a.csrsSynced = reg.HasSynced

	factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSyncWithContext(ctx, a.csrsSynced) {
		return fmt.Errorf("nodejoin: CSR cache did not sync: %w", context.Cause(ctx))
	}
	if a.recorder == nil {
		a.recorder = events.NewRecorder(ctx, a.client, corev1.EventSource{Component: approverComponent}, 4)
	}
	go a.run(ctx)
	logger.Info("Started the CSR approver", "signer", signerAPIServerClient, "users", approvableUsers, "workers", a.opts.Workers)
	return nil
}

// enqueueCSR queues an undecided CSR of the signer the Approver handles; it is the add handler.
// Deletions need nothing: a deleted CSR is not decided.
func (a *Approver) enqueueCSR(obj any) {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok || csr.Spec.SignerName != signerAPIServerClient || decided(csr) {
		return
	}
	a.queue.Add(cache.MetaObjectToName(csr))
}

// handleCSRUpdate queues a CSR that changed; periodic resyncs (same resourceVersion) are dropped.
func (a *Approver) handleCSRUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*certificatesv1.CertificateSigningRequest)
	cur, ok2 := newObj.(*certificatesv1.CertificateSigningRequest)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	a.enqueueCSR(cur)
}

// run runs the workers until ctx ends; shutting the queue down then makes them return.
func (a *Approver) run(ctx context.Context) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer a.queue.ShutDown()
	workloop.Run(ctx, a.opts.Workers, a.queue, "Deciding CSR", a.syncCSR)
	<-ctx.Done()
	klog.FromContext(ctx).Info("Stopping the CSR approver")
}

// syncCSR decides one CSR and writes the decision through the approval subresource, then
// sends a Warning Event for a denial.
func (a *Approver) syncCSR(ctx context.Context, key cache.ObjectName) error {
	logger := klog.FromContext(ctx).WithValues("csr", key.Name)
	cached, err := a.csrs.Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading CSR %s from the cache: %w", key.Name, err)
	}
	d := decide(cached)
	if d.verdict == ignore {
		logger.V(4).Info("Leaving CSR alone", "why", d.message)
		return nil
	}
	condition := certificatesv1.CertificateSigningRequestCondition{
		Type:           certificatesv1.CertificateApproved,
		Status:         corev1.ConditionTrue,
		Reason:         d.reason,
		Message:        d.message,
		LastUpdateTime: metav1.Now(),
	}
	if d.verdict == deny {
		condition.Type = certificatesv1.CertificateDenied
	}
	csr := cached.DeepCopy()
	csr.Status.Conditions = append(csr.Status.Conditions, condition)
	if _, err := a.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing the %s decision on CSR %s: %w", d.verdict, csr.Name, err)
	}
	if d.verdict == deny {
		logger.Info("Denied CSR", "reason", d.reason, "message", d.message, "requester", csr.Spec.Username)
		a.recorder.Event(csr, corev1.EventTypeWarning, d.reason, d.message)
		return nil
	}
	logger.Info("Approved CSR", "message", d.message)
	return nil
}
