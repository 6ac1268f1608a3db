package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestPrintsEachPart checks what each -part prints: the object counts of the workload of
// record (and of a small one), and the node-addresses patches.
func TestPrintsEachPart(t *testing.T) {
	small := []string{"-nodes", "3", "-namespaces", "2", "-pods", "10", "-local", "4", "-policies", "5"}
	for _, tt := range []struct {
		name  string
		args  []string
		kinds map[string]int
	}{
		{name: "everything of the workload of record", args: nil,
			kinds: map[string]int{"Node": 50, "Namespace": 100, "Pod": 5000, "NetworkPolicy": 1000}},
		{name: "objects of a small workload, scaled twice", args: append([]string{"-scale", "2", "-part", "objects"}, small...),
			kinds: map[string]int{"Namespace": 4, "Pod": 20, "NetworkPolicy": 10}},
		{name: "nodes only", args: append([]string{"-part", "nodes"}, small...), kinds: map[string]int{"Node": 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tt.args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			got := map[string]int{}
			for _, line := range strings.Split(out.String(), "\n") {
				if kind, ok := strings.CutPrefix(line, "kind: "); ok {
					got[kind]++
				}
			}
			for kind, want := range tt.kinds {
				if got[kind] != want {
					t.Errorf("%d %s, want %d (all: %v)", got[kind], kind, want, got)
				}
			}
			if len(got) != len(tt.kinds) {
				t.Errorf("kinds printed: %v, want %v", got, tt.kinds)
			}
		})
	}
	t.Run("node addresses", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"-part", "node-addresses"}, small...), &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		want := `node-2 {"status":{"addresses":[{"type":"InternalIP","address":"172.16.0.4"},{"type":"Hostname","address":"node-2"}]}}`
		if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || lines[2] != want {
			t.Fatalf("got %q, want 3 lines ending with %s", lines, want)
		}
	})
	t.Run("an unknown part is refused", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run([]string{"-part", "services"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `-part "services"`) {
			t.Fatalf("exit %d, stderr %q", code, errOut.String())
		}
	})
}
