// Command netpol-workload prints the NetworkPolicy workload of record (internal/benchworkload,
// the input netpol's benchmarks compile) as manifests for kubectl apply, at any scale:
//
//	netpol-workload [-scale N] [-nodes 50 -namespaces 100 -pods 5000 -local 100 -policies 1000] [-part P] [-o yaml|json]
//
// -scale multiplies the counts (1 is the workload of record, 10 is 500 nodes, 50,000 pods of
// which 1,000 on node-0 and 10,000 policies). -part picks what to print:
//
//	nodes           the kwok Nodes with their pod CIDRs
//	node-addresses  one line per node, "NAME PATCH": a merge patch for its status subresource
//	                (kubectl patch node NAME --subresource=status --type=merge -p PATCH). A Node
//	                create drops status, so apply these once the nodes exist and before the
//	                pods: kwok gives a pod its node's InternalIP as hostIP
//	namespaces, pods, policies
//	objects         namespaces, pods and policies
//	all             everything but node-addresses (default)
//
// The pods get their addresses from kwok, inside their node's pod CIDR, not the ones
// netpol's benchmarks give them in memory. The output is deterministic.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/k3snet/k3snet/internal/benchworkload"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "netpol-workload: %v\n", err)
		return 2
	}
	out := bufio.NewWriter(stdout)
	err = write(out, cfg)
	if flushErr := out.Flush(); err == nil {
		err = flushErr
	}
	if err != nil {
		fmt.Fprintf(stderr, "netpol-workload: %v\n", err)
		return 1
	}
	return 0
}

// config is the command line.
type config struct {
	size   benchworkload.Size
	part   string
	format string
}

// kinds is what -part prints, in apply order; false for an unknown part.
func kinds(part string) ([]string, bool) {
	switch part {
	case "all":
		return []string{"nodes", "namespaces", "pods", "policies"}, true
	case "objects":
		return []string{"namespaces", "pods", "policies"}, true
	case "nodes", "namespaces", "pods", "policies", "node-addresses":
		return []string{part}, true
	}
	return nil, false
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("netpol-workload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	record := benchworkload.Record()
	var cfg config
	scale := fs.Int("scale", 1, "multiply every count by this")
	fs.IntVar(&cfg.size.Nodes, "nodes", record.Nodes, "nodes (node-0 is the node under test)")
	fs.IntVar(&cfg.size.Namespaces, "namespaces", record.Namespaces, "namespaces")
	fs.IntVar(&cfg.size.Pods, "pods", record.Pods, "pods")
	fs.IntVar(&cfg.size.Local, "local", record.Local, "pods on node-0")
	fs.IntVar(&cfg.size.Policies, "policies", record.Policies, "NetworkPolicies")
	fs.StringVar(&cfg.part, "part", "all", "all, objects, nodes, node-addresses, namespaces, pods or policies")
	fs.StringVar(&cfg.format, "o", "yaml", "yaml or json (one JSON List)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.size = cfg.size.Scaled(*scale)
	return cfg, validate(cfg, *scale)
}

func validate(cfg config, scale int) error {
	var errs []error
	s := cfg.size
	if scale < 1 {
		errs = append(errs, fmt.Errorf("-scale %d: must be at least 1", scale))
	}
	if s.Nodes < 1 || s.Namespaces < 1 || s.Pods < 0 || s.Local < 0 || s.Policies < 0 {
		errs = append(errs, errors.New("-nodes and -namespaces must be at least 1, the other counts at least 0"))
	}
	if s.Local > s.Pods {
		errs = append(errs, fmt.Errorf("-local %d: more than -pods %d", s.Local, s.Pods))
	}
	if s.Pods > s.Local && s.Nodes < 2 {
		errs = append(errs, errors.New("pods that are not local need a second node"))
	}
	if _, ok := kinds(cfg.part); !ok {
		errs = append(errs, fmt.Errorf("-part %q: unknown", cfg.part))
	}
	if cfg.format != "yaml" && cfg.format != "json" {
		errs = append(errs, fmt.Errorf("-o %q: yaml or json", cfg.format))
	}
	return errors.Join(errs...)
}

// write prints the parts cfg asks for.
func write(w io.Writer, cfg config) error {
	if cfg.part == "node-addresses" {
		return writeNodeAddresses(w, cfg.size)
	}
	want, _ := kinds(cfg.part)
	objs, err := manifests(cfg.size, want)
	if err != nil {
		return err
	}
	if cfg.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(list(objs))
	}
	return writeYAML(w, objs)
}
