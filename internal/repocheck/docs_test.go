package repocheck

import (
	"bytes"
	"fmt"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// citation matches the ways comments, strings and names used to cite documents that are not
// in the repository: section numbers of a spec ("spec 1.5", "spec A.3", "spec A of ...",
// "(spec §2.1)", a bare "§2.1"), the style and design notes ("STYLE §4", "STYLE.md",
// "DESIGN"), file sections ("servicelb-ccm.md section 2") and the task brief ("the mission's
// example", TestMissionExample). Kubernetes' own uses of the word stay legal: "svc.Spec",
// "spec.podCIDRs", "the pod spec", "a spec whose host bits ...", and so do words that merely
// contain "mission": admission, permission, retransmission.
var citation = regexp.MustCompile(`\b[Ss]pec (?:§|[0-9]|[A-Z](?:\.[0-9]|[ ,;:)]|$))` +
	`|§ ?[0-9]` +
	`|\bSTYLE\b|\bDESIGN\b` +
	`|\b[\w-]+\.md section\b` +
	`|\bmission|Mission` +
	// A citation wrapped after "(spec", its section on the next line.
	`|\([Ss]pec$`)

// TestGoDocCitesNoOutsideDocument fails for every comment, string literal or identifier of a
// .go file of the module, tests included, that cites a document outside the repository,
// naming file:line, so that the documentation, test names and failure messages say the
// behaviour itself (or the K3s, Kubernetes or kube-router behaviour or upstream issue it
// follows) instead.
func TestGoDocCitesNoOutsideDocument(t *testing.T) {
	root := moduleRoot(t)
	// This file quotes every citation form on purpose, to test the pattern.
	self := filepath.Join(root, "internal", "repocheck", "docs_test.go")
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			if path != root {
				// Another module (internal/tools) keeps its own rules.
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || path == self {
			return nil
		}
		hits, err := citations(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, h := range hits {
			found = append(found, filepath.ToSlash(rel)+":"+h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("%d comments, strings or names cite a document outside the repository; name the "+
			"behaviour, the K3s or Kubernetes behaviour it matches, or an upstream issue instead:\n%s",
			len(found), strings.Join(found, "\n"))
	}
}

// citations returns "line: text" for each line of a comment, string literal or identifier in
// the Go file at path that matches citation.
func citations(path string) ([]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	file := fset.AddFile(path, -1, len(src))
	var s scanner.Scanner
	var scanErr error
	s.Init(file, src, func(pos token.Position, msg string) {
		scanErr = fmt.Errorf("%s: %s", pos, msg)
	}, scanner.ScanComments)
	var hits []string
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok != token.COMMENT && tok != token.STRING && tok != token.IDENT {
			continue
		}
		line := fset.Position(pos).Line
		for i, text := range strings.Split(lit, "\n") {
			if citation.MatchString(text) {
				hits = append(hits, fmt.Sprintf("%d: %s", line+i, strings.TrimSpace(text)))
			}
		}
	}
	return hits, scanErr
}

// moduleRoot is the directory of the go.mod of module github.com/k3snet/k3snet above the
// test's working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(mod), []byte("module github.com/k3snet/k3snet\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of github.com/k3snet/k3snet above the working directory")
		}
		dir = parent
	}
}

// TestCitationPattern keeps the pattern precise: it flags the citation forms, not
// Kubernetes' own uses of "spec".
func TestCitationPattern(t *testing.T) {
	for _, text := range []string{
		"// the MaxSyncInterval rule (spec 1.5).",
		"// the template variables of spec A.3",
		"// (spec A of packaged-clustercidr.md)",
		"// Start-up follows spec B.4: every ClusterCIDR",
		"// an allow window (spec §2.1).",
		"// Spec §2.9: a hostNetwork pod",
		"// §2.12 loopback.",
		"// (STYLE §4)",
		"// (STYLE.md: 10.0.0.10 is not before 10.0.0.9)",
		"// (DESIGN: idempotent)",
		"// (spec servicelb-ccm.md section 2)",
		`"the mission's example is valid"`,
		"func TestMissionExampleThroughKubectl(t *testing.T) {",
		"const missionExample = `",
	} {
		if !citation.MatchString(text) {
			t.Errorf("not flagged: %q", text)
		}
	}
	for _, text := range []string{
		"// svc.Spec.Type is LoadBalancer",
		"// spec.podCIDRs with one block per family",
		"// the pod spec of the DaemonSet",
		"// a dual-stack spec whose host bits fit both families",
		"// the OCI image spec (image-layout.md, manifest.md)",
		"// Spec is the ClusterCIDR's spec.",
		"// a Style of writing, a design choice",
		"// ClusterCIDRSpec is the spec of a ClusterCIDR object",
		"// pod admission needs the default ServiceAccount",
		`"Permission denied (you must be root)"`,
		"// after the first SYN retransmission",
		"var _ = admissionv1.AdmissionReview{}",
	} {
		if citation.MatchString(text) {
			t.Errorf("flagged: %q", text)
		}
	}
}
