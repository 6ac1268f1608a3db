package packaged

import (
	"context"
	"errors"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// settleDelay lets a burst of file events (an editor's save, Stage writing several files)
// end before a pass reads the directory, so one burst costs one pass.
const settleDelay = 200 * time.Millisecond

// run is the deploy loop: one pass at start, then a pass after every burst of file events
// and every Interval. The periodic pass retries failed files and catches what a watch can
// miss (a directory created after the watch was set, an overflowed event queue). Only this
// goroutine touches c.files, so passes never overlap.
func (c *Controller) run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		// Without a watch the periodic pass still applies every change, only later.
		logger.Error(err, "Watching the manifests directory failed; relying on the periodic pass", "dir", c.opts.ManifestsDir)
		watcher = nil
	} else {
		defer func() {
			if err := watcher.Close(); err != nil {
				logger.Error(err, "Closing the manifests watcher")
			}
		}()
	}
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	if watcher != nil {
		events, watchErrs = watcher.Events, watcher.Errors
	}
	watched := map[string]bool{}

	ticker := time.NewTicker(c.opts.Interval)
	defer ticker.Stop()
	var settle <-chan time.Time
	for {
		c.runPass(ctx, watcher, watched)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				waiting = false
			case <-settle:
				settle, waiting = nil, false
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				logger.V(4).Info("Manifests directory changed", "event", ev.String())
				if settle == nil {
					settle = time.After(settleDelay)
				}
			case err, ok := <-watchErrs:
				if !ok {
					watchErrs = nil
					continue
				}
				logger.Error(err, "Watching the manifests directory")
			}
		}
	}
}

// runPass runs one pass, logs its error, adds watches for new directories and reports the
// pass to the test hook.
func (c *Controller) runPass(ctx context.Context, watcher *fsnotify.Watcher, watched map[string]bool) {
	scan, err := c.pass(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		klog.FromContext(ctx).Error(err, "Failed to process manifests", "dir", c.opts.ManifestsDir)
	}
	if watcher != nil {
		for _, d := range scan.dirs {
			if watched[d] {
				continue
			}
			if err := watcher.Add(d); err != nil {
				klog.FromContext(ctx).Error(err, "Watching a manifests directory", "dir", d)
				continue
			}
			watched[d] = true
		}
	}
	if c.afterPass != nil {
		c.afterPass(err)
	}
}
