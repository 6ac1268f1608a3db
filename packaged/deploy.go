package packaged

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
)

// fileState is what the deploy loop remembers about one file between passes. Only the loop
// goroutine touches it.
type fileState struct {
	// done is the file's modification time after its last successful apply (or disable).
	done time.Time
	// failure is the message of the last Warning Event, so a file that keeps failing the
	// same way does not send an Event every pass (Events are emitted on change).
	failure string
}

// fileWork is one changed file on its way through a pass.
type fileWork struct {
	file     manifestFile
	mtime    time.Time
	addon    *unstructured.Unstructured
	objs     []*unstructured.Unstructured
	checksum string
	// applied collects the keys of the objects applied so far (CRDs in the first phase).
	applied map[objKey]bool
	failed  bool
}

// pass runs one deploy pass over the manifests directory: disabled files are
// deleted, changed files applied, in sorted path order except that the CRDs of every changed
// file are applied and waited on first. A failing file does not stop the others; its error
// is returned (joined) and it is retried next pass because its mtime is not recorded.
func (c *Controller) pass(ctx context.Context) (scanResult, error) {
	scan, err := scanDir(c.opts.ManifestsDir)
	if err != nil {
		return scan, err
	}
	var errs []error
	var todo []*fileWork
	actions := make([]fileAction, len(scan.files))
	var named []manifestFile
	for i, f := range scan.files {
		if actions[i] = classify(f.rel, c.opts.Disables, scan.skips); actions[i] != actionIgnore {
			named = append(named, f)
		}
	}
	// The first pass after a start knows no file yet, so it checks every file against its
	// Addon: one LIST instead of a GET a file keeps a restart's reads to one request (K3s's
	// deploy controller reads Addons from an informer cache). Later passes read only the
	// Addons of changed files. Without the list, prepare reads each Addon itself.
	var listed map[string]*unstructured.Unstructured
	if len(c.files) == 0 && len(named) > 1 {
		if listed, err = c.addons.list(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Reading the Addons one by one instead")
		}
	}
	refused := nameConflicts(named, func(name string) string {
		if listed != nil {
			return addonSource(listed[name])
		}
		return c.addons.source(ctx, name)
	})
	for i, f := range scan.files {
		if keeper, ok := refused[f.path]; ok {
			errs = append(errs, c.refuse(ctx, f, keeper))
			continue
		}
		switch actions[i] {
		case actionDisable:
			errs = append(errs, c.disable(ctx, f))
		case actionApply:
			w, err := c.prepare(ctx, f, listed[addonName(f.rel)])
			errs = append(errs, err)
			if w != nil {
				todo = append(todo, w)
			}
		}
	}
	errs = append(errs, c.applyCRDs(ctx, todo))
	for _, w := range todo {
		if !w.failed {
			errs = append(errs, c.applies.Observe(c.applyFile(ctx, w)))
		}
	}
	// Forget files that are gone. Their objects and Addon stay, as in K3s (K3s
	// #1971): removing a file is not disabling it.
	seen := make(map[string]bool, len(scan.files))
	for _, f := range scan.files {
		seen[f.path] = true
	}
	for p := range c.files {
		if !seen[p] {
			delete(c.files, p)
		}
	}
	return scan, errors.Join(errs...)
}

// prepare reads and parses a file that may have changed. It returns nil work when the file
// is unchanged: same mtime as after its last success, or same checksum as its Addon records
// (as K3s's deploy controller skips a file). A file whose mtime is the Unix epoch (immutable stores pin it
// there) is always read. addon is the file's Addon when the pass has read it already, else
// nil: prepare gets it, creating it if missing.
func (c *Controller) prepare(ctx context.Context, f manifestFile, addon *unstructured.Unstructured) (*fileWork, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, c.failed(ctx, f, nil, ReasonReadManifestFailed, "Reading", err)
	}
	st := c.files[f.path]
	if mt := fi.ModTime(); !st.done.IsZero() && mt.Unix() != 0 && mt.Equal(st.done) {
		return nil, nil
	}
	name := addonName(f.rel)
	if addon == nil {
		if addon, err = c.addons.getOrCreate(ctx, name, f.path); err != nil {
			return nil, c.failed(ctx, f, nil, ReasonApplyManifestFailed, "Applying", err)
		}
	}
	data, err := readManifest(f.path, c.maxManifestBytes)
	if err != nil {
		return nil, c.failed(ctx, f, addon, ReasonReadManifestFailed, "Reading", err)
	}
	sum := sha256.Sum256(data)
	checksum := hex.EncodeToString(sum[:])
	if addonChecksum(addon) == checksum {
		c.succeeded(f, fi.ModTime())
		return nil, nil
	}
	objs, err := parseManifest(data)
	if err != nil {
		return nil, c.failed(ctx, f, addon, ReasonParseManifestFailed, "Parsing", err)
	}
	klog.FromContext(ctx).V(2).Info("Applying manifest", "path", f.path, "addon", name, "objects", len(objs))
	c.recorder.Eventf(addon, corev1.EventTypeNormal, ReasonApplyingManifest, messageApplying, f.path)
	return &fileWork{file: f, mtime: fi.ModTime(), addon: addon, objs: objs, checksum: checksum, applied: map[objKey]bool{}}, nil
}

// applyCRDs applies the CRDs of every changed file and waits until they are established, so
// that custom resources in the same or an earlier file apply in the second phase (K3s #5081).
func (c *Controller) applyCRDs(ctx context.Context, todo []*fileWork) error {
	var errs []error
	var names []string
	var withCRDs []*fileWork
	for _, w := range todo {
		has := false
		for _, obj := range w.objs {
			if !isCRD(obj) {
				continue
			}
			has = true
			key, err := c.applier.apply(ctx, obj, w.addon.GetName())
			if err != nil {
				w.failed = true
				errs = append(errs, c.failed(ctx, w.file, w.addon, ReasonApplyManifestFailed, "Applying", err))
				break
			}
			w.applied[key] = true
			names = append(names, obj.GetName())
		}
		if has && !w.failed {
			withCRDs = append(withCRDs, w)
		}
	}
	if err := c.applier.waitEstablished(ctx, names); err != nil {
		for _, w := range withCRDs {
			w.failed = true
			errs = append(errs, c.failed(ctx, w.file, w.addon, ReasonApplyManifestFailed, "Applying", err))
		}
	}
	return errors.Join(errs...)
}

// applyFile applies the non-CRD objects of w, prunes what left the file, and records the
// success on the Addon: checksum and kinds are written only after every object applied.
func (c *Controller) applyFile(ctx context.Context, w *fileWork) error {
	name := w.addon.GetName()
	for _, obj := range w.objs {
		if isCRD(obj) {
			continue
		}
		key, err := c.applier.apply(ctx, obj, name)
		if err != nil {
			return c.failed(ctx, w.file, w.addon, ReasonApplyManifestFailed, "Applying", err)
		}
		w.applied[key] = true
	}
	// Prune over the file's kinds and the kinds recorded last time, so objects whose kind
	// left the file go too (K3s #5559 and #11975).
	gvks := fileGVKs(w.objs)
	prune := unionGVKs(gvks, parseGVKs(w.addon.GetAnnotations()[annotationGVKs]))
	if err := c.applier.prune(ctx, name, prune, w.applied); err != nil {
		return c.failed(ctx, w.file, w.addon, ReasonApplyManifestFailed, "Applying", err)
	}
	// Re-read the Addon for a fresh resourceVersion to update.
	addon, err := c.addons.getOrCreate(ctx, name, w.file.path)
	if err != nil {
		return c.failed(ctx, w.file, w.addon, ReasonApplyManifestFailed, "Applying", err)
	}
	if rec, changed := addonRecord(addon, w.file.path, w.checksum, formatGVKs(gvks)); changed {
		if err := c.addons.update(ctx, rec); err != nil {
			return c.failed(ctx, w.file, addon, ReasonApplyManifestFailed, "Applying", err)
		}
	}
	klog.FromContext(ctx).Info("Applied manifest", "path", w.file.path, "addon", name)
	c.recorder.Eventf(addon, corev1.EventTypeNormal, ReasonAppliedManifest, messageApplied, w.file.path)
	c.succeeded(w.file, w.mtime)
	return nil
}

// disable deletes the objects of a disabled file, the file (unless it came through a
// symlinked directory) and its Addon, as K3s's deploy controller does for a disabled file. Objects are found by owner label
// in the kinds of the file and of the Addon's record. Disabling again finds no file and does
// nothing; a linked file that cannot be removed is not processed again until it changes.
func (c *Controller) disable(ctx context.Context, f manifestFile) error {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil // gone already: nothing to disable (disable acts on files present, as in K3s)
	}
	if st := c.files[f.path]; !st.done.IsZero() && fi.ModTime().Equal(st.done) {
		return nil
	}
	name := addonName(f.rel)
	addon, err := c.addons.getOrCreate(ctx, name, f.path)
	if err != nil {
		return fmt.Errorf("disabling %s: %w", f.path, err)
	}
	gvks := parseGVKs(addon.GetAnnotations()[annotationGVKs])
	if data, err := readManifest(f.path, c.maxManifestBytes); err == nil {
		if objs, err := parseManifest(data); err == nil {
			gvks = unionGVKs(gvks, fileGVKs(objs))
		}
	}
	klog.FromContext(ctx).Info("Deleting manifest", "path", f.path, "addon", name)
	c.recorder.Eventf(addon, corev1.EventTypeNormal, ReasonDeletingManifest, messageDeleting, f.path)
	if err := c.applier.prune(ctx, name, gvks, nil); err != nil {
		return fmt.Errorf("disabling %s: %w", f.path, err)
	}
	if !f.linked {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disabling %s: removing the file: %w", f.path, err)
		}
	}
	if err := c.addons.delete(ctx, name); err != nil {
		return fmt.Errorf("disabling %s: %w", f.path, err)
	}
	if f.linked {
		c.succeeded(f, fi.ModTime())
	} else {
		delete(c.files, f.path)
	}
	return nil
}

// errAddonNameConflict refuses a file whose Addon name another file already uses.
var errAddonNameConflict = errors.New("conflicting Addon name")

// refuse reports that f maps to the Addon name of the file keeper, which keeps it: f is
// neither applied nor disabled, so neither file prunes the other's objects, and a Warning
// Event on the Addon says which files to rename.
func (c *Controller) refuse(ctx context.Context, f manifestFile, keeper string) error {
	name := addonName(f.rel)
	// Without the Addon the conflict is still logged and returned, only not as an Event.
	addon, _ := c.addons.getOrCreate(ctx, name, keeper)
	err := fmt.Errorf("%w: Addon %s tracks %q; rename one of the files", errAddonNameConflict, name, keeper)
	return c.failed(ctx, f, addon, ReasonAddonNameConflict, "Applying", err)
}

// failed logs a file's failure, sends a Warning Event on its Addon when the message differs
// from the last one, and returns the error for the pass.
func (c *Controller) failed(ctx context.Context, f manifestFile, addon *unstructured.Unstructured, reason, verb string, err error) error {
	klog.FromContext(ctx).Error(err, "Manifest failed", "path", f.path, "reason", reason)
	st := c.files[f.path]
	st.done = time.Time{}
	if msg := reason + ": " + err.Error(); addon != nil && st.failure != msg {
		st.failure = msg
		c.recorder.Eventf(addon, corev1.EventTypeWarning, reason, messageFailed, verb, f.path, err)
	}
	c.files[f.path] = st
	return fmt.Errorf("%s manifest %s: %w", verb, f.path, err)
}

// succeeded records that f is done as of mtime.
func (c *Controller) succeeded(f manifestFile, mtime time.Time) {
	c.files[f.path] = fileState{done: mtime}
}

// unionGVKs returns a followed by the kinds of b not in a.
func unionGVKs(a, b []schema.GroupVersionKind) []schema.GroupVersionKind {
	seen := make(map[schema.GroupVersionKind]bool, len(a))
	out := append([]schema.GroupVersionKind(nil), a...)
	for _, g := range a {
		seen[g] = true
	}
	for _, g := range b {
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}
