package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce gathers the burst of events one save makes (write, chmod, rename)
// into one reload.
const debounce = 200 * time.Millisecond

// Watch reloads the policy when its files change, until ctx ends. It watches
// every directory under the policy paths and the directories holding them,
// so files and directories that are replaced (editors' atomic saves,
// Kubernetes ConfigMap updates) are seen. A reload that fails keeps the
// running policy. With Options.FS set there is nothing to watch and Watch
// returns nil at once.
func (e *Engine) Watch(ctx context.Context) error {
	if e.fsys != nil {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	defer w.Close()
	roots := e.watchRoots()
	e.addWatches(w, roots)

	timer := time.NewTimer(debounce)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if relevant(roots, ev.Name) {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.log.Warn("policy watch", "error", err)
		case <-timer.C:
			// Directories may have been created or replaced: watch them
			// before loading, so a write right after the load is not missed.
			e.addWatches(w, roots)
			_ = e.Reload(ctx) // logged and counted by Reload
		}
	}
}

// watchRoots are the configured paths, absolute and cleaned.
func (e *Engine) watchRoots() []string {
	roots := make([]string, 0, len(e.cfg.Paths))
	for _, p := range e.cfg.Paths {
		if abs, err := filepath.Abs(p); err == nil {
			roots = append(roots, abs)
		}
	}
	return roots
}

// addWatches watches each root's parent and every directory under a root.
// Adding a directory already watched is a no-op for fsnotify.
func (e *Engine) addWatches(w *fsnotify.Watcher, roots []string) {
	for _, root := range roots {
		e.addWatch(w, filepath.Dir(root))
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // gone or unreadable: the next reload reports it
			}
			if !d.IsDir() {
				return nil
			}
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			e.addWatch(w, p)
			return nil
		})
	}
}

func (e *Engine) addWatch(w *fsnotify.Watcher, dir string) {
	if err := w.Add(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.log.Warn("policy watch", "dir", dir, "error", err)
	}
}

// relevant reports whether an event on name can change the policy: the name
// is a root or lies under one. Hidden names count, because Kubernetes swaps
// a ConfigMap's files by renaming its ..data link.
func relevant(roots []string, name string) bool {
	for _, root := range roots {
		if name == root || strings.HasPrefix(name, root+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
