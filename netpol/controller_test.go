package netpol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2/ktesting"
)

// waitFor bounds how long the unit tests wait for the controller to reach a state; reaching
// it is the assertion, the bound only keeps a broken controller from hanging the test.
const waitFor = 10 * time.Second

// fakeKernel is a Runner that runs nothing: it records each command line and prints nothing,
// as an empty kernel would. Its first failures restores fail (the preflight's --test ones
// aside).
type fakeKernel struct {
	mu       sync.Mutex
	calls    []string
	failures int
}

func (k *fakeKernel) run(_ context.Context, input io.Reader, name string, args ...string) (string, error) {
	// Read as the command would, to the end, before taking the lock: an iptables-restore's
	// last line comes only once an ipset restore that runs beside it is over.
	stdin, err := readInput(input)
	if err != nil {
		return "", fmt.Errorf("%s: reading standard input: %w", name, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, strings.Join(append([]string{name}, args...), " ")+"\n"+stdin)
	if strings.HasSuffix(name, "-restore") && !slices.Contains(args, "--test") && k.failures > 0 {
		k.failures--
		return "", fmt.Errorf("%s: exit status 1: the kernel says no", name)
	}
	return "", nil
}

// readInput reads a Runner's standard input to its end; nil is none.
func readInput(stdin io.Reader) (string, error) {
	if stdin == nil {
		return "", nil
	}
	b, err := io.ReadAll(stdin)
	return string(b), err
}

// left returns how many restores are still to fail.
func (k *fakeKernel) left() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failures
}

// count returns how many commands ran.
func (k *fakeKernel) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.calls)
}

// recordingDataplane records every applied State.
type recordingDataplane struct {
	mu     sync.Mutex
	states []State
	// forgets counts ForgetApplied calls.
	forgets int
}

func (d *recordingDataplane) Preflight(context.Context, []corev1.IPFamily) error { return nil }

func (d *recordingDataplane) ForgetApplied() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgets++
}

func (d *recordingDataplane) Apply(_ context.Context, st State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.states = append(d.states, st)
	return nil
}

// last returns the last applied State and how many were applied.
func (d *recordingDataplane) last() (State, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.states) == 0 {
		return State{}, 0
	}
	return d.states[len(d.states)-1], len(d.states)
}

// fixture is a controller on a fake clientset.
type fixture struct {
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	ctrl     *Controller
	recorder *record.FakeRecorder
	registry metrics.KubeRegistry
}

// newFixture builds a controller for node-1 (pod CIDR 10.42.0.0/24) over objs, with dp as its
// dataplane. Its context ends with the test.
func newFixture(t *testing.T, opts Options, dp dataplane, objs ...runtime.Object) (*fixture, context.Context) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.42.0.0/24"}}}
	f := &fixture{client: fake.NewClientset(append([]runtime.Object{node}, objs...)...), recorder: record.NewFakeRecorder(100)}
	f.factory = informers.NewSharedInformerFactory(f.client, 0)
	opts.NodeName = nodeName
	opts.EventRecorder = f.recorder
	f.registry = metrics.NewKubeRegistry()
	opts.MetricsRegistry = f.registry
	var err error
	f.ctrl, err = newController(f.client, opts, dp)
	require.NoError(t, err)
	return f, ctx
}

// syncs returns how many syncs ended with result, as netpol_syncs_total says.
func (f *fixture) syncs(t *testing.T, result string) int {
	t.Helper()
	return int(f.metric(t, "netpol_syncs_total", "result", result))
}

// metric returns the value of the counter or gauge name with the label pair, 0 when the
// registry has no such series.
func (f *fixture) metric(t *testing.T, name string, labelPair ...string) float64 {
	t.Helper()
	return gatherMetric(t, f.registry, name, labelPair...)
}

// gatherMetric returns the value of the counter or gauge name with the label pair in reg, 0
// when it has no such series.
func gatherMetric(t *testing.T, reg metrics.KubeRegistry, name string, labelPair ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labelPair); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labelPair[i] && lp.GetValue() == labelPair[i+1])
				}
				if !found {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// createPod creates a Running pod of namespace x on node-1 at 10.42.0.<i>.
func (f *fixture) createPod(ctx context.Context, t *testing.T, i int) {
	t.Helper()
	pod := makePod("x", fmt.Sprintf("p%d", i), onNode(nodeName), withIPs(fmt.Sprintf("10.42.0.%d", i)))
	_, err := f.client.CoreV1().Pods("x").Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr []string
	}{
		{name: "a node name alone is enough, the rest has K3s's defaults", opts: Options{NodeName: "n"}},
		{name: "a missing node name is reported", opts: Options{}, wantErr: []string{"NodeName is required"}},
		{
			name:    "every bad field is reported at once",
			opts:    Options{Families: []corev1.IPFamily{"IPv5", corev1.IPv4Protocol, corev1.IPv4Protocol}, NodePortFirst: 10, NodePortLast: 5, MinSyncInterval: time.Hour, MaxSyncInterval: time.Minute},
			wantErr: []string{"NodeName is required", `unknown IP family "IPv5"`, "IPv4 listed twice", "not a port range", "exceeds MaxSyncInterval"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.withDefaults().Validate()
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}
	_, err := New(fake.NewClientset(), Options{})
	require.ErrorContains(t, err, "NodeName is required", "New validates")
}

// TestControllerDoesNotProgramBeforeCachesSync holds the NetworkPolicy list until pods,
// namespaces and the node are cached and a pod event has been delivered: nothing may reach
// the kernel, since a sync without the policies would open every pod.
func TestControllerDoesNotProgramBeforeCachesSync(t *testing.T) {
	kernel := &fakeKernel{}
	listing := make(chan struct{})
	var once sync.Once
	var released atomic.Bool
	f, ctx := newFixture(t, Options{}, NewDataplane(kernel.run), makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5")))
	// The list fails until released (a reactor must not block: the fake clientset holds
	// its lock while reactors run); the reflector retries it.
	f.client.PrependReactor("list", "networkpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() { close(listing) })
		if released.Load() {
			return false, nil, nil // on to the object tracker
		}
		return true, nil, errors.New("the API server is slow today")
	})
	started := make(chan error, 1)
	go func() { started <- f.ctrl.Start(ctx, f.factory) }()

	select {
	case <-listing:
	case <-time.After(waitFor):
		t.Fatal("the controller never listed NetworkPolicies")
	}
	// The pod informer has synced and delivered its add; the handler signalled the runner.
	require.Eventually(t, f.factory.Core().V1().Pods().Informer().HasSynced, waitFor, 10*time.Millisecond)
	f.createPod(ctx, t, 6)
	require.Eventually(t, func() bool {
		_, err := f.ctrl.podLister.Pods("x").Get("p6")
		return err == nil
	}, waitFor, 10*time.Millisecond)
	select {
	case err := <-started:
		t.Fatalf("Start returned before the NetworkPolicy cache synced: %v", err)
	default:
	}
	require.Zero(t, kernel.count(), "no command may run before every cache has synced")

	released.Store(true)
	require.NoError(t, recv(t, started))
	require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == 1 }, waitFor, 10*time.Millisecond)
	assert.NotZero(t, kernel.count())
}

// TestControllerCoalescesBursts creates 40 pods at once: their events are merged into far
// fewer syncs than events, and the last sync holds every pod.
func TestControllerCoalescesBursts(t *testing.T) {
	dp := &recordingDataplane{}
	f, ctx := newFixture(t, Options{MinSyncInterval: time.Second}, dp)
	require.NoError(t, f.ctrl.Start(ctx, f.factory))
	require.Eventually(t, func() bool { _, n := dp.last(); return n == 1 }, waitFor, 10*time.Millisecond)

	const burst = 40
	for i := range burst {
		f.createPod(ctx, t, 10+i)
	}
	require.Eventually(t, func() bool {
		st, _ := dp.last()
		return len(st.Rulesets) == 1 && programmedPods(st.Rulesets[0]) == burst
	}, waitFor, 10*time.Millisecond, "the last applied state should program every pod")
	// The burst takes milliseconds and the next sync waits a MinSyncInterval (1 s) after the
	// first, so one sync serves it; two leave room for a slow machine. Without coalescing
	// there would be one per event.
	_, n := dp.last()
	assert.LessOrEqual(t, n-1, 2, "syncs after the initial one for a burst of %d pod events", burst)
}

// programmedPods counts the addresses FORWARD sends through an ingress group's chain.
func programmedPods(rs Ruleset) int {
	addrs := map[string]bool{}
	for _, rule := range chainRules(rs, ChainForward) {
		name, _, ok := strings.Cut(strings.TrimPrefix(rule, "-m set --match-set "), " dst -j "+podChainPrefix)
		if !ok {
			continue
		}
		for _, s := range rs.Sets {
			if s.Name == name {
				for _, e := range s.Entries {
					addrs[e] = true
				}
			}
		}
	}
	return len(addrs)
}

// TestControllerUnchangedStateRunsNoCommand checks that a sync whose state equals the one
// applied last runs no command at all: here a namespace relabel no policy looks at.
func TestControllerUnchangedStateRunsNoCommand(t *testing.T) {
	kernel := &fakeKernel{}
	ns := makeNamespace("x")
	f, ctx := newFixture(t, Options{MinSyncInterval: 10 * time.Millisecond}, NewDataplane(kernel.run), ns, makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5")))
	require.NoError(t, f.ctrl.Start(ctx, f.factory))
	require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == 1 }, waitFor, 10*time.Millisecond)
	before := kernel.count()

	ns = ns.DeepCopy()
	ns.Labels["team"] = "blue"
	_, err := f.client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.syncs(t, syncUnchanged) == 1 }, waitFor, 10*time.Millisecond)
	assert.Equal(t, before, kernel.count(), "an unchanged state must not reach the kernel")
	assert.Equal(t, 1, f.syncs(t, syncApplied))

	// A change that matters does reach it.
	f.createPod(ctx, t, 7)
	require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == 2 }, waitFor, 10*time.Millisecond)
	assert.Greater(t, kernel.count(), before)
}

// TestControllerCallsAfterFirstApplyOnce: the hook runs after the first sync that reaches the
// kernel (not after a failed one), and never again, whatever syncs follow.
func TestControllerCallsAfterFirstApplyOnce(t *testing.T) {
	kernel := &fakeKernel{failures: 1}
	var calls atomic.Int32
	after := func() {
		calls.Add(1)
		assert.Zero(t, kernel.left(), "called before a sync reached the kernel")
	}
	f, ctx := newFixture(t, Options{MinSyncInterval: 10 * time.Millisecond, AfterFirstApply: after}, NewDataplane(kernel.run), makeNamespace("x"))
	require.NoError(t, f.ctrl.Start(ctx, f.factory))
	require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == 1 }, waitFor, 10*time.Millisecond)
	f.createPod(ctx, t, 7)
	require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == 2 }, waitFor, 10*time.Millisecond)
	assert.Equal(t, 1, f.syncs(t, syncFailed))
	assert.Equal(t, int32(1), calls.Load())
}

// TestControllerDriftRepairReadsTheKernelInFull: a sync due to MaxSyncInterval makes the
// Dataplane forget its caches first, so edits inside our chains and sets are repaired; a sync
// caused by an event does not.
func TestControllerDriftRepairReadsTheKernelInFull(t *testing.T) {
	t.Run("event-driven syncs keep the caches", func(t *testing.T) {
		dp := &recordingDataplane{}
		f, ctx := newFixture(t, Options{MinSyncInterval: 10 * time.Millisecond, MaxSyncInterval: time.Hour}, dp, makeNamespace("x"))
		require.NoError(t, f.ctrl.Start(ctx, f.factory))
		require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == 1 }, waitFor, 10*time.Millisecond)
		f.createPod(ctx, t, 7)
		require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == 2 }, waitFor, 10*time.Millisecond)
		dp.mu.Lock()
		defer dp.mu.Unlock()
		assert.Zero(t, dp.forgets)
	})
	t.Run("every drift-repair sync forgets them", func(t *testing.T) {
		dp := &recordingDataplane{}
		f, ctx := newFixture(t, Options{MinSyncInterval: 10 * time.Millisecond, MaxSyncInterval: 100 * time.Millisecond}, dp, makeNamespace("x"))
		require.NoError(t, f.ctrl.Start(ctx, f.factory))
		require.Eventually(t, func() bool { return f.syncs(t, syncApplied) >= 3 }, waitFor, 10*time.Millisecond)
		dp.mu.Lock()
		forgets, applies := dp.forgets, len(dp.states)
		dp.mu.Unlock()
		// With no event, every apply after the first is a repair, which forgets first: the
		// count is one less than the applies, or equal while a repair is between the two.
		assert.GreaterOrEqual(t, forgets, 2)
		assert.Contains(t, []int{applies - 1, applies}, forgets, "%d applies", applies)
	})
}

// TestControllerWarnsOncePerInvalidPolicy stores a policy the API server would reject (the
// fake clientset does not validate): it gets one Warning Event however many syncs follow,
// another when it changes, and the valid policy beside it is enforced.
func TestControllerWarnsOncePerInvalidPolicy(t *testing.T) {
	dp := &recordingDataplane{}
	bad := makePolicy("x", "bad-block", ingressRules(from(peers(cidrPeer("10.0.0.0/33")))))
	good := makePolicy("x", "allow-80", ingressRules(from(nil, port(80))))
	f, ctx := newFixture(t, Options{MinSyncInterval: 10 * time.Millisecond}, dp,
		makeNamespace("x"), makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5")), bad, good)
	require.NoError(t, f.ctrl.Start(ctx, f.factory))

	event := func() string {
		select {
		case e := <-f.recorder.Events:
			return e
		case <-time.After(waitFor):
			t.Fatal("no Event")
			return ""
		}
	}
	e := event()
	assert.Contains(t, e, "Warning "+ReasonInvalidPolicy)
	assert.Contains(t, e, "10.0.0.0/33")
	st, _ := dp.last()
	assert.Contains(t, fmt.Sprint(st), "--dport 80", "the valid policy is enforced")

	// More syncs, same policy: no more Events.
	for i := range 3 {
		f.createPod(ctx, t, 20+i)
		want := i + 2
		require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == want }, waitFor, 10*time.Millisecond)
	}
	assert.Empty(t, f.recorder.Events)

	// The policy changes and is still invalid: one new Event.
	bad = bad.DeepCopy()
	bad.Generation++
	bad.Spec.Ingress[0].From[0].IPBlock.CIDR = "10.0.0.0/34"
	_, err := f.client.NetworkingV1().NetworkPolicies("x").Update(ctx, bad, metav1.UpdateOptions{})
	require.NoError(t, err)
	assert.Contains(t, event(), "10.0.0.0/34")
}

// TestControllerWarnsOfTooLargePolicy stores a policy whose ipBlocks need more set entries
// than one policy may use: it gets a NetworkPolicyTooLarge Warning Event, and the pod it
// selects stays isolated with nothing admitted by the policy.
func TestControllerWarnsOfTooLargePolicy(t *testing.T) {
	dp := &recordingDataplane{}
	f, ctx := newFixture(t, Options{MinSyncInterval: 10 * time.Millisecond}, dp,
		makeNamespace("x"), makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5")),
		blockPolicy("p", []int{maxPolicyBlockEntries + 1}))
	require.NoError(t, f.ctrl.Start(ctx, f.factory))
	select {
	case e := <-f.recorder.Events:
		assert.Contains(t, e, "Warning "+ReasonPolicyTooLarge)
		assert.Contains(t, e, "the pods it selects stay isolated")
	case <-time.After(waitFor):
		t.Fatal("no Event")
	}
	st, _ := dp.last()
	rs := ruleset(t, st, corev1.IPv4Protocol)
	chain := policyChainName(corev1.IPv4Protocol, "x", "p", dirIngress)
	assert.Empty(t, chainRules(rs, chain))
	assert.Contains(t, chainRules(rs, groupChainOf(rs, dirIngress, "10.42.0.5")), "-j "+chain)
}

// TestControllerRetriesFailedApply makes the first applies fail: the runner retries without
// a new event, and the sync succeeds once the kernel does.
func TestControllerRetriesFailedApply(t *testing.T) {
	kernel := &fakeKernel{failures: 2}
	f, ctx := newFixture(t, Options{MinSyncInterval: 20 * time.Millisecond}, NewDataplane(kernel.run), makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5")))
	require.NoError(t, f.ctrl.Start(ctx, f.factory))
	require.Eventually(t, func() bool { return f.syncs(t, syncApplied) == 1 }, waitFor, 10*time.Millisecond)
	assert.Equal(t, 2, f.syncs(t, syncFailed))
	assert.Zero(t, f.metric(t, "netpol_last_sync_failed"))
	assert.NotZero(t, f.metric(t, "netpol_rules", "family", "IPv4"))
}
