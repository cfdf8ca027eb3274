//go:build linux

package transfer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

func syscallMkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// TestDiskFull downloads a file and a folder onto a 256 KiB tmpfs. The
// tmpfs is mounted in a mount namespace private to one OS thread, which
// the fetching goroutine keeps locked and which dies with it, so nothing
// outlives the test even if it fails.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "big.bin"), 1<<20, 20)
	mkdir(t, filepath.Join(src, "folder"))
	writeRandom(t, filepath.Join(src, "folder", "big.bin"), 1<<20, 21)
	s, addr := startServer(t, ServerConfig{})
	files := share(t, s, 1, filepath.Join(src, "big.bin"), filepath.Join(src, "folder"))
	dest := t.TempDir()
	c := newTestClient(t, ClientConfig{})

	type result struct {
		fileErr, folderErr error
		part               int64
		left               int
		skip               string
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		var r result
		if err := privateTmpfs(dest); err != nil {
			r.skip = err.Error()
			done <- r
			return
		}
		_, r.fileErr = c.Fetch(context.Background(), request(addr, 1, files[0], dest))
		if fi, err := os.Stat(partPath(dest, files[0])); err == nil {
			r.part = fi.Size()
			os.Remove(partPath(dest, files[0]))
		}
		_, r.folderErr = c.Fetch(context.Background(), request(addr, 1, files[1], dest))
		entries, _ := os.ReadDir(dest)
		r.left = len(entries)
		done <- r
	}()
	r := <-done
	if r.skip != "" {
		t.Skip(r.skip)
	}
	if !errors.Is(r.fileErr, ErrDiskFull) || !errors.Is(r.fileErr, syscall.ENOSPC) {
		t.Errorf("file: err = %v, want ErrDiskFull", r.fileErr)
	}
	if r.part <= 0 || r.part > 256<<10 {
		t.Errorf("file: .part of %d bytes, want the partial file kept", r.part)
	}
	if !errors.Is(r.folderErr, ErrDiskFull) || r.left != 0 {
		t.Errorf("folder: err = %v and %d entries left, want ErrDiskFull and the folder removed", r.folderErr, r.left)
	}
	t.Log(r.fileErr)
}

// privateTmpfs gives the calling (locked) thread its own mount namespace
// and mounts a small tmpfs on dir there.
func privateTmpfs(dir string) error {
	if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
		return err
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return err
	}
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k")
}
