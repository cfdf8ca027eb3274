package transfer

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanchat/lanchat/ipmsg"
)

// FuzzFolderStream feeds arbitrary bytes to the folder-stream receiver: it
// must not panic, must write nothing outside its destination, and must
// leave either nothing (on error) or exactly its one top folder.
func FuzzFolderStream(f *testing.F) {
	f.Add(dir6(f))
	ok := dirStream(nil).dir("top", 0)
	f.Add([]byte(ok.file("a.txt", "hello").dir("子目录", 0x65a1b2c3).file("b", "").up().dir("empty", 0).up().up()))
	f.Add([]byte(ok.up().up().dir("etc", 0).file("passwd", "root")))
	f.Add([]byte(ok.raw("..", 0, ipmsg.FileDir, "").file("x", "y").up().up()))
	f.Add([]byte(ok.raw("/etc/passwd", 4, ipmsg.FileRegular, "root").up()))
	f.Add([]byte(ok.raw("link", 3, ipmsg.FileSymlink, "abc").up()))
	f.Add([]byte(ok.raw("a", 1<<30, ipmsg.FileRegular, "short")))
	f.Fuzz(func(t *testing.T, b []byte) {
		dest, _ := sandbox(t)
		root, err := os.OpenRoot(dest)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		cs := ipmsg.UTF8
		if len(b)%2 == 1 {
			cs = ipmsg.GB18030
		}
		w := &folderWriter{dest: root, br: bufio.NewReader(bytes.NewReader(b)), cs: cs,
			limits: limits{bytes: 1 << 20, entries: 1000, depth: 16}, m: newMeter(nil, 0, 0), buf: make([]byte, 4096)}
		err = w.receive("top")
		entries, _ := os.ReadDir(dest)
		switch {
		case err != nil && len(entries) != 0:
			t.Errorf("error %v left %d entries", err, len(entries))
		case err == nil && (len(entries) != 1 || entries[0].Name() != w.top || filepath.Base(w.top) != w.top):
			t.Errorf("success left %v, top %q", entries, w.top)
		}
	})
}

// FuzzCheckName: whatever CheckName accepts is a single local path
// element on every system.
func FuzzCheckName(f *testing.F) {
	for _, n := range unsafeNames {
		f.Add(n.name)
	}
	for _, n := range safeNames {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		if !filepath.IsLocal(name) || strings.ContainsAny(name, `/\:`) || filepath.Base(name) != name ||
			len(name) > maxName || isDeviceName(name) {
			t.Errorf("CheckName accepted %q", name)
		}
	})
}
