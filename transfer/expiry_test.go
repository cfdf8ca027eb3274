package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

func TestOfferMaxAge(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(src, []byte("hello"), 0o644)
	synctest.Test(t, func(t *testing.T) {
		s := NewServer(ServerConfig{MaxAge: time.Hour})
		share(t, s, 1, src)
		req := ipmsg.FileRequest{Offer: 1, ID: firstID}
		time.Sleep(59 * time.Minute)
		_, done, err := s.claim(req, loopback, func() {})
		if err != nil {
			t.Fatalf("before MaxAge: %v", err)
		}
		done()
		time.Sleep(2 * time.Minute)
		if _, _, err := s.claim(req, loopback, func() {}); !errors.Is(err, errNotOffered) {
			t.Errorf("after MaxAge: %v, want not offered", err)
		}
		share(t, s, 2, src) // sweeps the expired offer
		if _, ok := s.offers[1]; ok || len(s.offers) != 1 {
			t.Errorf("offers = %v, want only offer 2", s.offers)
		}
	})
}
