package ipmsg

import (
	"strconv"
	"strings"
)

// Command is the fifth header field: a mode in the low byte and option bits
// above it. Option bits mean different things for different modes.
type Command uint32

// Mode returns the command without its options.
func (c Command) Mode() Command { return c & 0xff }

// Opts returns the option bits.
func (c Command) Opts() Command { return c &^ 0xff }

// Has reports whether every bit of opt is set.
func (c Command) Has(opt Command) bool { return c&opt == opt }

// Modes. The comment after each names its Extra.
const (
	NoOperation     Command = 0x00 // empty; sent before BR_ENTRY by IP Messenger and FeiQ
	BrEntry         Command = 0x01 // entry sections; broadcast on start
	BrExit          Command = 0x02 // entry sections, or empty (iptux)
	AnsEntry        Command = 0x03 // entry sections; unicast answer to BR_ENTRY
	BrAbsence       Command = 0x04 // entry sections; status or nickname changed, no answer
	BrIsGetList     Command = 0x10 // old host-list probe
	OkGetList       Command = 0x11 // "I can send a host list"
	GetList         Command = 0x12 // start position, decimal
	AnsList         Command = 0x13 // host list chunk, see HostList
	AnsListDict     Command = 0x14 // host list as IPDict; ignored
	BrIsGetList2    Command = 0x18 // host-list probe IP Messenger uses
	SendMsg         Command = 0x20 // text \0 [file list]
	RecvMsg         Command = 0x21 // acked PacketNo, decimal
	ReadMsg         Command = 0x30 // PacketNo of the sealed message that was opened
	DelMsg          Command = 0x31 // PacketNo of a sealed message discarded unread
	AnsReadMsg      Command = 0x32 // PacketNo of the READMSG being answered
	GetInfo         Command = 0x40 // empty
	SendInfo        Command = 0x41 // client version text
	GetAbsenceInfo  Command = 0x50 // empty
	SendAbsenceInfo Command = 0x51 // away text, or "Not Absence mode"
	GetFileData     Command = 0x60 // TCP: offer PacketNo hex ":" file ID hex ":" offset hex [":"]
	ReleaseFiles    Command = 0x61 // PacketNo of the offer given up
	GetDirFiles     Command = 0x62 // TCP: offer PacketNo hex ":" file ID hex [":"]
	GetPubKey       Command = 0x72 // crypto capabilities, hex; never answered (no encryption)
	AnsPubKey       Command = 0x73 // capabilities ":" e "-" n
	FeiQOpenYou     Command = 0x77 // FeiQ: chat window opened; empty
	FeiQInputing    Command = 0x79 // FeiQ: typing; empty
	FeiQInputEnd    Command = 0x7a // FeiQ: stopped typing; empty
	FeiQSendImage   Command = 0xc0 // FeiQ: inline picture chunk
	FeiQKnock       Command = 0xd1 // FeiQ: window shake; empty
	IptuxSendMsg    Command = 0xfb // iptux: group/segment/broadcast text; no ack
	IptuxSendSign   Command = 0xfc // iptux: personal signature text
	IptuxSublayer   Command = 0xfd // iptux, TCP: picture bytes until close
	IptuxSendIcon   Command = 0xfe // iptux: avatar bytes after the first NUL
	IptuxAskShared  Command = 0xff // iptux: ask for the share list
)

// Options of entry-type modes (BR_ENTRY, ANSENTRY, BR_ABSENCE, BR_EXIT,
// NOOPERATION): the sender's status and capabilities.
const (
	AbsenceOpt     Command = 0x00000100 // away (iptux always sets it)
	ServerOpt      Command = 0x00000200
	DialupOpt      Command = 0x00010000 // unicast entry traffic to me
	CapFileEncOpt  Command = 0x00040000
	FileAttachOpt  Command = 0x00200000 // also on SENDMSG: extra has a file list
	EncryptOpt     Command = 0x00400000 // also on SENDMSG: extra is encrypted
	UTF8Opt        Command = 0x00800000 // this packet is UTF-8
	CapUTF8Opt     Command = 0x01000000 // can receive UTF-8
	CapIPDictOpt   Command = 0x02000000
	EncExtMsgOpt   Command = 0x04000000
	ClipboardOpt   Command = 0x08000000
	DirMasterOpt   Command = 0x10000000
	IptuxPasswdOpt Command = 0x40000000
	IptuxSharedOpt Command = 0x80000000
)

// Options of message modes (SENDMSG, READMSG, RECVMSG, …).
const (
	SendCheckOpt Command = 0x00000100 // answer RECVMSG
	SecretOpt    Command = 0x00000200 // sealed: show after the user opens it, then READMSG
	BroadcastOpt Command = 0x00000400 // no RECVMSG, no auto-reply
	MulticastOpt Command = 0x00000800 // the same message went to several people
	NoPopupOpt   Command = 0x00001000
	AutoRetOpt   Command = 0x00002000 // automatic reply; never answer it
	RetryOpt     Command = 0x00004000
	PasswordOpt  Command = 0x00008000
	NoLogOpt     Command = 0x00020000
	NoAddListOpt Command = 0x00080000
	ReadCheckOpt Command = 0x00100000 // on READMSG: answer ANSREADMSG
	SecretExOpt          = SecretOpt | ReadCheckOpt
)

// Options of GETFILEDATA and GETDIRFILES.
const (
	EncFileObsOpt Command = 0x00000400
	EncFileOpt    Command = 0x00000800
)

// Options of iptux's IPTUX_SENDMSG.
const (
	IptuxRegularOpt   Command = 0x100
	IptuxSegmentOpt   Command = 0x200
	IptuxGroupOpt     Command = 0x300
	IptuxBroadcastOpt Command = 0x400
)

type named struct {
	bit  Command
	name string
}

var modeNames = map[Command]string{
	NoOperation: "NOOPERATION", BrEntry: "BR_ENTRY", BrExit: "BR_EXIT", AnsEntry: "ANSENTRY",
	BrAbsence: "BR_ABSENCE", BrIsGetList: "BR_ISGETLIST", OkGetList: "OKGETLIST", GetList: "GETLIST",
	AnsList: "ANSLIST", AnsListDict: "ANSLIST_DICT", BrIsGetList2: "BR_ISGETLIST2", SendMsg: "SENDMSG",
	RecvMsg: "RECVMSG", ReadMsg: "READMSG", DelMsg: "DELMSG", AnsReadMsg: "ANSREADMSG", GetInfo: "GETINFO",
	SendInfo: "SENDINFO", GetAbsenceInfo: "GETABSENCEINFO", SendAbsenceInfo: "SENDABSENCEINFO",
	GetFileData: "GETFILEDATA", ReleaseFiles: "RELEASEFILES", GetDirFiles: "GETDIRFILES",
	GetPubKey: "GETPUBKEY", AnsPubKey: "ANSPUBKEY", FeiQOpenYou: "FEIQ_OPENYOU", FeiQInputing: "FEIQ_INPUTING",
	FeiQInputEnd: "FEIQ_INPUTEND", FeiQSendImage: "FEIQ_SENDIMAGE", FeiQKnock: "FEIQ_KNOCK",
	IptuxSendMsg: "IPTUX_SENDMSG", IptuxSendSign: "IPTUX_SENDSIGN", IptuxSublayer: "IPTUX_SENDSUBLAYER",
	IptuxSendIcon: "IPTUX_SENDICON", IptuxAskShared: "IPTUX_ASKSHARED",
}

var entryOpts = []named{
	{AbsenceOpt, "ABSENCEOPT"}, {ServerOpt, "SERVEROPT"}, {DialupOpt, "DIALUPOPT"},
	{CapFileEncOpt, "CAPFILEENCOPT"}, {FileAttachOpt, "FILEATTACHOPT"}, {EncryptOpt, "ENCRYPTOPT"},
	{UTF8Opt, "UTF8OPT"}, {CapUTF8Opt, "CAPUTF8OPT"}, {CapIPDictOpt, "CAPIPDICTOPT"},
	{EncExtMsgOpt, "ENCEXTMSGOPT"}, {ClipboardOpt, "CLIPBOARDOPT"}, {DirMasterOpt, "DIR_MASTER"},
	{IptuxPasswdOpt, "IPTUX_PASSWDOPT"}, {IptuxSharedOpt, "IPTUX_SHAREDOPT"},
}

var msgOpts = []named{
	{SendCheckOpt, "SENDCHECKOPT"}, {SecretOpt, "SECRETOPT"}, {BroadcastOpt, "BROADCASTOPT"},
	{MulticastOpt, "MULTICASTOPT"}, {NoPopupOpt, "NOPOPUPOPT"}, {AutoRetOpt, "AUTORETOPT"},
	{RetryOpt, "RETRYOPT"}, {PasswordOpt, "PASSWORDOPT"}, {NoLogOpt, "NOLOGOPT"},
	{NoAddListOpt, "NOADDLISTOPT"}, {ReadCheckOpt, "READCHECKOPT"}, {FileAttachOpt, "FILEATTACHOPT"},
	{EncryptOpt, "ENCRYPTOPT"}, {UTF8Opt, "UTF8OPT"}, {CapUTF8Opt, "CAPUTF8OPT"},
	{EncExtMsgOpt, "ENCEXTMSGOPT"}, {IptuxPasswdOpt, "IPTUX_PASSWDOPT"}, {IptuxSharedOpt, "IPTUX_SHAREDOPT"},
}

var fileOpts = []named{
	{EncFileObsOpt, "ENCFILE_OBSLT"}, {EncFileOpt, "ENCFILEOPT"}, {FileAttachOpt, "FILEATTACHOPT"},
	{EncryptOpt, "ENCRYPTOPT"}, {UTF8Opt, "UTF8OPT"},
}

// IsEntry reports whether the mode carries host status bits and entry sections.
func (c Command) IsEntry() bool {
	switch c.Mode() {
	case NoOperation, BrEntry, BrExit, AnsEntry, BrAbsence:
		return true
	}
	return false
}

// optNames returns the option table that applies to c's mode.
func (c Command) optNames() []named {
	switch m := c.Mode(); {
	case c.IsEntry():
		return entryOpts
	case m == GetFileData || m == GetDirFiles:
		return fileOpts
	case m == IptuxSendMsg:
		return nil // its low option bits are a category, printed as a number
	default:
		return msgOpts
	}
}

// String names the mode and each option as the protocol document does, with
// options decoded for the mode, e.g. "SENDMSG|SENDCHECKOPT|UTF8OPT". Unknown
// bits are printed in hex.
func (c Command) String() string {
	var b strings.Builder
	if name, ok := modeNames[c.Mode()]; ok {
		b.WriteString(name)
	} else {
		b.WriteString("0x")
		b.WriteString(strconv.FormatUint(uint64(c.Mode()), 16))
	}
	rest := c.Opts()
	for _, o := range c.optNames() {
		if rest&o.bit == o.bit {
			b.WriteString("|")
			b.WriteString(o.name)
			rest &^= o.bit
		}
	}
	if rest != 0 {
		b.WriteString("|0x")
		b.WriteString(strconv.FormatUint(uint64(rest), 16))
	}
	return b.String()
}
