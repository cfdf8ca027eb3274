package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// IdentityFile is the key's file name in a data folder.
const IdentityFile = "identity.key"

// LoadIdentity reads the Ed25519 key in dir, creating it on first use. The
// file is private (0600): whoever holds it is this node to the relay.
func LoadIdentity(dir string) (crypto.PrivKey, peer.ID, error) {
	path := filepath.Join(dir, IdentityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, "", fmt.Errorf("identity %s is damaged (move it away to make a new one, which other members see as a new person): %w", path, err)
		}
		id, err := peer.IDFromPrivateKey(k)
		return k, id, err
	case !errors.Is(err, os.ErrNotExist):
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	if b, err = crypto.MarshalPrivateKey(k); err != nil {
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	// Write then link: two processes starting together agree on one key.
	tmp, err := os.CreateTemp(dir, IdentityFile+".*")
	if err != nil {
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	tmp.Close()
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	return LoadIdentity(dir)
}
