package ipmsg

import "testing"

// TestCommandString checks that options are named for their mode: the same
// bit is ABSENCEOPT on an entry and SENDCHECKOPT on a message (§13 item 15).
func TestCommandString(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{"sendmsg 0x100", 0x120, "SENDMSG|SENDCHECKOPT"},
		{"entry 0x100", 0x101, "BR_ENTRY|ABSENCEOPT"},
		{"sendmsg 0x200", 0x220, "SENDMSG|SECRETOPT"},
		{"entry 0x200", 0x201, "BR_ENTRY|SERVEROPT"},
		{"getfiledata 0x400", 0x460, "GETFILEDATA|ENCFILE_OBSLT"},
		{"sendmsg 0x400", 0x420, "SENDMSG|BROADCASTOPT"},
		{"iptux ack", 0x121, "RECVMSG|SENDCHECKOPT"},
		{"W entry", 224657409, "BR_ENTRY|CAPFILEENCOPT|FILEATTACHOPT|ENCRYPTOPT|CAPUTF8OPT|ENCEXTMSGOPT|CLIPBOARDOPT"},
		{"W utf-8 message", 0x01800120, "SENDMSG|SENDCHECKOPT|UTF8OPT|CAPUTF8OPT"},
		{"sealed read", 0x100030, "READMSG|READCHECKOPT"},
		{"iptux exit", 65538, "BR_EXIT|DIALUPOPT"},
		{"W request utf-8", 8388704, "GETFILEDATA|UTF8OPT"},
		{"iptux request", 2097250, "GETDIRFILES|FILEATTACHOPT"},
		{"iptux group message", 1019, "IPTUX_SENDMSG|0x300"},
		{"iptux ask shared", 1073742079, "IPTUX_ASKSHARED|IPTUX_PASSWDOPT"},
		{"FeiQ picture", 2097344, "FEIQ_SENDIMAGE|FILEATTACHOPT"},
		{"old entry bit", 0x1001, "BR_ENTRY|0x1000"},
		{"unknown mode", 0xd8, "0xd8"},
		{"nooperation", 0, "NOOPERATION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cmd.String(); got != tt.want {
				t.Errorf("Command(%#x).String() = %q, want %q", uint32(tt.cmd), got, tt.want)
			}
		})
	}
}

func TestCommandParts(t *testing.T) {
	c := SendMsg | SendCheckOpt | UTF8Opt
	if c.Mode() != SendMsg || c.Opts() != SendCheckOpt|UTF8Opt || !c.Has(SendCheckOpt|UTF8Opt) || c.Has(SecretExOpt) {
		t.Errorf("Mode %v, Opts %#x, Has", c.Mode(), uint32(c.Opts()))
	}
	for _, m := range []Command{NoOperation, BrEntry, BrExit, AnsEntry, BrAbsence} {
		if !(m | AbsenceOpt).IsEntry() {
			t.Errorf("%v is not an entry mode", m)
		}
	}
	if SendMsg.IsEntry() || GetFileData.IsEntry() {
		t.Error("SENDMSG or GETFILEDATA is an entry mode")
	}
}
