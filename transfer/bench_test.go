package transfer

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// The benchmarks print beside baselines measured in the same run: a plain
// io.Copy of the same file over loopback TCP, and the same folder as a tar
// stream. Both baselines write the received bytes to disk too.

const (
	benchFileSize   = 256 << 20
	benchFolderN    = 2000
	benchFolderSize = 4 << 10
)

var quiet = slog.New(slog.DiscardHandler)

func BenchmarkFile(b *testing.B) {
	src := filepath.Join(b.TempDir(), "big.bin")
	writeRandom(b, src, benchFileSize, 1)
	b.Run("transfer", func(b *testing.B) {
		s, addr := startServer(b, ServerConfig{Logger: quiet})
		files := share(b, s, 1, src)
		c := NewClient(ClientConfig{Logger: quiet})
		dest := b.TempDir()
		b.SetBytes(benchFileSize)
		b.ReportAllocs()
		for b.Loop() {
			path, err := c.Fetch(context.Background(), request(addr, 1, files[0], dest))
			if err != nil {
				b.Fatal(err)
			}
			os.Remove(path)
		}
	})
	b.Run("baseline-tcp", func(b *testing.B) {
		addr := baselineServer(b, func(c net.Conn) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(c, f)
			return err
		})
		out := filepath.Join(b.TempDir(), "big.bin")
		b.SetBytes(benchFileSize)
		b.ReportAllocs()
		for b.Loop() {
			baselineFetch(b, addr, func(c net.Conn) error {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				_, err = io.Copy(f, c)
				return errors.Join(err, f.Close(), os.Remove(out))
			})
		}
	})
}

func BenchmarkFolder(b *testing.B) {
	src := filepath.Join(b.TempDir(), "many")
	mkdir(b, src)
	for i := range benchFolderN {
		writeRandom(b, filepath.Join(src, "f"+strconv.Itoa(i)), benchFolderSize, uint64(i))
	}
	perOp := func(b *testing.B) {
		b.SetBytes(benchFolderN * benchFolderSize)
		b.ReportAllocs()
	}
	files := func(b *testing.B) {
		b.ReportMetric(float64(b.N*benchFolderN)/b.Elapsed().Seconds(), "files/s")
	}
	b.Run("transfer", func(b *testing.B) {
		s, addr := startServer(b, ServerConfig{Logger: quiet})
		offer := share(b, s, 1, src)
		c := NewClient(ClientConfig{Logger: quiet})
		dest := b.TempDir()
		perOp(b)
		for b.Loop() {
			path, err := c.Fetch(context.Background(), request(addr, 1, offer[0], dest))
			if err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(path)
		}
		files(b)
	})
	b.Run("baseline-tar", func(b *testing.B) {
		addr := baselineServer(b, func(c net.Conn) error { return sendTar(c, src) })
		dest := filepath.Join(b.TempDir(), "many")
		perOp(b)
		for b.Loop() {
			baselineFetch(b, addr, func(c net.Conn) error {
				return errors.Join(receiveTar(c, dest), os.RemoveAll(dest))
			})
		}
		files(b)
	})
}

// baselineServer answers every connection on a loopback port with send.
func baselineServer(b *testing.B, send func(net.Conn) error) string {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if err := send(c); err != nil {
				b.Error(err)
			}
			c.Close()
		}
	})
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func baselineFetch(b *testing.B, addr string, receive func(net.Conn) error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := receive(c); err != nil {
		b.Fatal(err)
	}
}

// sendTar writes dir as a tar stream, as a tar-based tool would.
func sendTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	return errors.Join(err, tw.Close())
}

// receiveTar unpacks a tar stream into dir, keeping mtimes.
func receiveTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = writeTarFile(p, tr)
		}
		if err == nil {
			err = os.Chtimes(p, h.ModTime, h.ModTime)
		}
		if err != nil {
			return err
		}
	}
}

func writeTarFile(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}
