// Package settings loads and saves the user's lanchat settings, a JSON file
// in the data folder shared by the desktop app and `lanchat serve`.
package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lanchat/lanchat/ipmsg"
)

// FileName is the settings file in the data folder.
const FileName = "settings.json"

// Settings are what a user chooses once and expects to find again.
type Settings struct {
	Nick      string        `json:"nick,omitempty"`
	Group     string        `json:"group,omitempty"`
	Legacy    ipmsg.Charset `json:"legacy_charset,omitempty"` // gbk (default) or cp932
	Broadcast []string      `json:"broadcast,omitempty"`      // extra broadcast addresses, subnets, hosts
	AwayText  string        `json:"away_text,omitempty"`
	Port      int           `json:"port,omitempty"`
	// Downloads is where accepted files go; AutoAccept lists contacts whose
	// offers are downloaded without asking ("*" for everyone).
	Downloads  string   `json:"downloads,omitempty"`
	AutoAccept []string `json:"auto_accept,omitempty"`
	// Relay is the relay this node joined: its multiaddress ending in
	// /p2p/<relay peer ID>. Empty means LAN only.
	Relay string `json:"relay,omitempty"`
}

// DefaultDataDir is $LANCHAT_DATA, or "lanchat" in the user's config folder
// (~/.config/lanchat on Linux, %AppData%\lanchat on Windows).
func DefaultDataDir() string {
	if d := os.Getenv("LANCHAT_DATA"); d != "" {
		return d
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "lanchat")
	}
	return ".lanchat"
}

// Load reads the settings of a data folder; a missing file gives zero settings.
func Load(dataDir string) (Settings, error) {
	var s Settings
	b, err := os.ReadFile(filepath.Join(dataDir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("settings file %s is damaged: %w", filepath.Join(dataDir, FileName), err)
	}
	return s, nil
}

// Save writes the settings atomically, so a crash never leaves half a file.
func Save(dataDir string, s Settings) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	path := filepath.Join(dataDir, FileName)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return nil
}
