package forwarder

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
)

// withForeignRules puts rules of other programs in both families, as a CNI or
// kube-proxy-like agent might, so tests can check they survive untouched.
func withForeignRules(h *fakeHost) *fakeHost {
	for _, ipt := range h.ipt {
		ipt.add(tableFilter, chainForward, "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "ACCEPT")
		ipt.add(tableNAT, "CNI-HOSTPORT-DNAT")
		ipt.add(tableNAT, chainPrerouting, "-j", "CNI-HOSTPORT-DNAT")
		ipt.add(tableNAT, chainPostrouting, "-j", "MASQUERADE")
	}
	return h
}

func TestApplyIsIdempotentAndCleanupRemovesOnlyItsOwn(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := withForeignRules(newFakeHost())
	before := h.dump()

	// Another container of the same pod serves UDP on the same port, in the same netns.
	udp := newForwarder(newConfig(func(c *Config) { c.Proto = UDP }), Options{}, h)
	require.NoError(t, udp.Apply(ctx))
	withUDP := h.dump()

	tcp := newForwarder(newConfig(), Options{}, h)
	require.NoError(t, tcp.Apply(ctx))
	installed := h.dump()
	assert.Equal(t, []string{
		"-p tcp -m tcp --dport 8080 -j KLIPPER-LB-FWD-TCP-80",
		"-p udp -m udp --dport 8080 -j KLIPPER-LB-FWD-UDP-80",
		"-p tcp -m tcp --dport 8080 -j ACCEPT",
	}, installed[IPv4]["filter/FORWARD"], "jumps go on top, foreign rules keep their order")
	assert.Equal(t, []string{"-s 10.1.0.0/16 -j ACCEPT", "-d 10.2.0.2/32 -j DROP"}, installed[IPv4]["filter/KLIPPER-LB-FWD-TCP-80"])
	assert.Equal(t, []string{"-p tcp -j DNAT --to-destination [fd00:2::2]:8080"}, installed[IPv6]["nat/KLIPPER-LB-DNAT-TCP-80"])
	assert.Equal(t, map[Family]string{IPv4: "iptables-nft", IPv6: "ip6tables-nft"}, h.commands)

	t.Run("a second Apply, as after a container restart, writes nothing", func(t *testing.T) {
		writes := h.writes()
		again := newForwarder(newConfig(), Options{}, h)
		require.NoError(t, again.Apply(ctx))
		assert.Equal(t, writes, h.writes())
		assert.Equal(t, installed, h.dump())
	})
	t.Run("Cleanup leaves the other container's and foreign rules", func(t *testing.T) {
		require.NoError(t, tcp.Cleanup(ctx))
		assert.Equal(t, withUDP, h.dump())
	})
	t.Run("a second Cleanup finds nothing to do", func(t *testing.T) {
		writes := h.writes()
		require.NoError(t, tcp.Cleanup(ctx))
		assert.Equal(t, writes, h.writes())
	})
	t.Run("the last Cleanup restores the netns as it was", func(t *testing.T) {
		require.NoError(t, udp.Cleanup(ctx))
		assert.Equal(t, before, h.dump())
	})
}

func TestApplySkipsFamilies(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		fwd       map[Family]forwarding
		wantTouch []Family
	}{{
		name:      "IPv6 forwarding off leaves ip6tables alone, not even started",
		cfg:       newConfig(),
		fwd:       map[Family]forwarding{IPv4: forwardingOn, IPv6: forwardingOff},
		wantTouch: []Family{IPv4},
	}, {
		name:      "IPv6 disabled in the kernel leaves ip6tables alone",
		cfg:       newConfig(),
		fwd:       map[Family]forwarding{IPv4: forwardingOn, IPv6: forwardingAbsent},
		wantTouch: []Family{IPv4},
	}, {
		name:      "an IPv6-only destination leaves iptables alone",
		cfg:       newConfig(func(c *Config) { c.DestIPs = addrs("fd00:2::2") }),
		fwd:       bothOn(),
		wantTouch: []Family{IPv6},
	}, {
		name: "forwarding off everywhere succeeds and touches nothing, so the pod does not crash-loop",
		cfg:  newConfig(),
		fwd:  map[Family]forwarding{IPv4: forwardingOff, IPv6: forwardingAbsent},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			h := newFakeHost()
			h.fwd = tt.fwd
			f := newForwarder(tt.cfg, Options{}, h)
			require.NoError(t, f.Apply(ctx))
			for _, fam := range families() {
				touched := h.ipt[fam].writes > 0
				_, started := h.commands[fam]
				want := false
				for _, w := range tt.wantTouch {
					want = want || w == fam
				}
				assert.Equal(t, want, touched, "%s written", fam)
				assert.Equal(t, want, started, "%s runner started", fam)
			}
			require.NoError(t, f.Cleanup(ctx))
			assert.Equal(t, newFakeHost().dump(), h.dump())
		})
	}
}

func TestApplyRemovesAFamilyThatIsNowSkipped(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newFakeHost()
	f := newForwarder(newConfig(), Options{}, h)
	require.NoError(t, f.Apply(ctx))
	h.fwd[IPv6] = forwardingOff
	require.NoError(t, f.Apply(ctx))
	assert.Equal(t, newFakeIPTables().dump(), h.ipt[IPv6].dump())
	assert.NotEqual(t, newFakeIPTables().dump(), h.ipt[IPv4].dump())
}

func TestApplyRepairsStaleState(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	want := newFakeHost()
	require.NoError(t, newForwarder(newConfig(), Options{}, want).Apply(ctx))

	h := newFakeHost()
	ipt := h.ipt[IPv4]
	// A chain with an old destination and a jump that is there twice, as two starts
	// racing could leave them.
	ipt.add(tableNAT, "KLIPPER-LB-DNAT-TCP-80", "-p", "tcp", "-j", "DNAT", "--to-destination", "10.9.9.9:8080")
	jump := []string{"-p", "tcp", "-m", "tcp", "--dport", "80", "-j", "KLIPPER-LB-DNAT-TCP-80"}
	ipt.add(tableNAT, chainPrerouting, jump...)
	ipt.add(tableNAT, chainPrerouting, jump...)

	f := newForwarder(newConfig(), Options{}, h)
	require.NoError(t, f.Apply(ctx))
	assert.Equal(t, []string{"-p tcp -j DNAT --to-destination 10.2.0.2:8080"}, ipt.dump()["nat/KLIPPER-LB-DNAT-TCP-80"],
		"a chain that differs is replaced whole")
	assert.Len(t, ipt.dump()["nat/PREROUTING"], 2, "existing jumps are not added again")

	require.NoError(t, f.Cleanup(ctx))
	assert.Equal(t, newFakeHost().dump(), h.dump(), "Cleanup removes every copy of its jumps")
}

func TestApplyChoosesCommands(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		facts   backendFacts
		want    map[Family]string
		wantErr error
	}{{
		name:  "nf_tables loaded picks the -nft commands",
		facts: newFakeHost().facts,
		want:  map[Family]string{IPv4: "iptables-nft", IPv6: "ip6tables-nft"},
	}, {
		name:  "nf_tables not loaded picks the -legacy commands",
		facts: backendFacts{modulesListed: true, commands: newFakeHost().facts.commands},
		want:  map[Family]string{IPv4: "iptables-legacy", IPv6: "ip6tables-legacy"},
	}, {
		name:  "a backend set in Options wins over detection",
		opts:  Options{Backend: BackendLegacy},
		facts: newFakeHost().facts,
		want:  map[Family]string{IPv4: "iptables-legacy", IPv6: "ip6tables-legacy"},
	}, {
		name:    "an image without ip6tables fails for IPv6 and still programs IPv4",
		facts:   backendFacts{modulesListed: true, nfTablesLoaded: true, commands: map[string]Backend{"iptables": BackendNFT}},
		want:    map[Family]string{IPv4: "iptables"},
		wantErr: errNoCommand,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			h := newFakeHost()
			h.facts = tt.facts
			f := newForwarder(newConfig(), tt.opts, h)
			err := f.Apply(ctx)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, h.commands)
		})
	}
}

// exitError is an error with an iptables exit status, as go-iptables' *Error has.
type exitError int

func (e exitError) Error() string   { return "exit status" }
func (e exitError) ExitStatus() int { return int(e) }

func TestApplyRetriesTransientFailures(t *testing.T) {
	tests := []struct {
		name     string
		status   exitError
		failures int
		wantErr  bool
	}{
		{name: "a resource problem twice, as from a concurrent container, is retried", status: resourceProblem, failures: 2},
		{name: "a resource problem that never ends fails", status: resourceProblem, failures: 100, wantErr: true},
		{name: "a bad rule is not retried", status: 2, failures: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			h := newFakeHost()
			calls := 0
			h.ipt[IPv4].fail = func(op, table, chain string) error {
				if op != "Insert" || chain != chainPrerouting {
					return nil
				}
				calls++
				if calls <= tt.failures {
					return tt.status
				}
				return nil
			}
			err := newForwarder(newConfig(), Options{}, h).Apply(ctx)
			if !tt.wantErr {
				require.NoError(t, err)
				assert.Equal(t, tt.failures+1, calls)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "inserting jump in nat/PREROUTING", "the error names the operation and the chain")
			assert.Less(t, calls, tt.failures+1+len(retryDelays())+1)
		})
	}
}

func TestRun(t *testing.T) {
	t.Run("the rules exist while Run runs and are gone when its context ends", func(t *testing.T) {
		_, ctx := ktesting.NewTestContext(t)
		want := withForeignRules(newFakeHost())
		require.NoError(t, newForwarder(newConfig(), Options{}, want).Apply(ctx))

		h := withForeignRules(newFakeHost())
		before := h.dump()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- newForwarder(newConfig(), Options{}, h).Run(ctx) }()

		// Wait for the install by looking at the tables, as a probe would.
		for !reflect.DeepEqual(want.dump(), h.dump()) {
			select {
			case err := <-done:
				t.Fatalf("Run returned before it was stopped: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		cancel()
		require.NoError(t, <-done)
		assert.Equal(t, before, h.dump())
	})
	t.Run("a failed install is removed before Run returns its error", func(t *testing.T) {
		_, ctx := ktesting.NewTestContext(t)
		h := withForeignRules(newFakeHost())
		before := h.dump()
		boom := errors.New("boom")
		h.ipt[IPv6].fail = func(op, table, chain string) error {
			if op == "Insert" && chain == chainPrerouting {
				return boom
			}
			return nil
		}
		err := newForwarder(newConfig(), Options{}, h).Run(ctx)
		require.ErrorIs(t, err, boom)
		assert.Equal(t, before, h.dump(), "the IPv4 rules and the half-installed IPv6 rules are both gone")
	})
}

func TestCleanupRetriesWhatFailed(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := withForeignRules(newFakeHost())
	before := h.dump()
	f := newForwarder(newConfig(), Options{}, h)
	require.NoError(t, f.Apply(ctx))

	h.ipt[IPv6].fail = func(op, table, chain string) error {
		if op == "Delete" {
			return errors.New("boom")
		}
		return nil
	}
	err := f.Cleanup(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "removing IPv6 forwarding rules")
	assert.Equal(t, before[IPv4], h.dump()[IPv4], "IPv4 is removed although IPv6 failed")

	h.ipt[IPv6].fail = nil
	require.NoError(t, f.Cleanup(ctx))
	assert.Equal(t, before, h.dump())
}
