// Package ipmsg encodes and decodes the IP Messenger wire protocol spoken by
// IP Messenger for Windows, 飞鸽传书 (Feige), 飞秋 (FeiQ) and iptux. It takes
// bytes and returns values and back; it opens no sockets or files, reads no
// clock and logs nothing.
//
// # Datagram
//
// Every UDP datagram on port 2425, and the request line that opens a TCP file
// transfer, is one packet:
//
//	Version ":" PacketNo ":" User ":" Host ":" Command ":" Extra
//
// Version is "1" from IP Messenger and Feige, "1_lbt6_0#128#<MAC>#…" from FeiQ
// and "1_iptux 0.8.3" from iptux; peers accept a version that is "1" or starts
// with "1_", so lanchat sends "1". PacketNo and Command are decimal. Command's
// low byte is the mode ([Command.Mode]) and its upper 24 bits are options whose
// meaning depends on the mode ([Command.String] decodes them per mode). Extra
// is every byte after the fifth colon, colons included; it is a list of
// NUL-separated sections which may or may not end with a NUL, and which IP
// Messenger pads with 64 zero bytes on late retries ([Packet.Sections] trims).
//
// # Entry packets
//
// BR_ENTRY, ANSENTRY, BR_ABSENCE and BR_EXIT carry (see [Entry]):
//
//	nick(legacy) \0 group(legacy) \0 "\nUN:" user "\nHN:" host "\nNN:" nick "\nGN:" group "\nVS:" ver ["\nLC:" lanchat]
//
// The third section is IP Messenger's UTF-8 block; its fields win over the
// legacy ones. iptux instead sends four NUL-terminated sections: nick, group,
// icon file name and encoding ("utf-8"). lanchat marks itself with the LC key,
// which IP Messenger ignores as unknown and iptux reads as an icon name it
// cannot find.
//
// # Messages
//
// SENDMSG extra is text \0 [file list]; with SENDCHECKOPT the receiver answers
// RECVMSG whose extra is the original PacketNo as received. READMSG (sealed
// message opened), RELEASEFILES, ANSREADMSG likewise carry a PacketNo.
// GETINFO is answered by SENDINFO (a version string), GETABSENCEINFO by
// SENDABSENCEINFO (the away text, or [NotAbsence]).
//
// # Attachments
//
// SENDMSG|FILEATTACHOPT puts a file list in the second section (see [File],
// [ParseFileList], [AppendFileList]). Each entry is
//
//	id ":" name ":" size ":" mtime ":" attr [":" key "=" value ["," value]…]* ":" "\a"
//
// with id decimal and every other number hex. A ':' in a name is doubled.
// attr's low byte is the type (1 file, 2 directory, 0x20 inline image) and
// Windows sets flag bits above it, which iptux rejects, so lanchat sends the
// type alone. Separators vary (":\a", ":\a:", "\a:"); readers split on '\a'
// and strip one leading ':'. iptux sends the list after an empty text
// section and without SENDCHECKOPT, and the note as a separate SENDMSG.
// RELEASEFILES carries the offer's PacketNo when the receiver gives up.
//
// # File requests
//
// The receiver opens TCP to the sender's port and writes one packet, with no
// delimiter after it (see [FileRequest], [ReadFileRequest]):
//
//	GETFILEDATA (96)  offer ":" id ":" offset [":"] ["\0"]
//	GETDIRFILES (98)  offer ":" id [":" offset] [":"] ["\0"]
//
// all hex: the offer's PacketNo, the file ID from the offer (decimal there,
// hex here) and an offset that W and iptux send as 0 and ignore. W ends with
// ':', iptux with NUL instead. The sender answers GETFILEDATA with exactly
// size raw bytes and closes.
//
// # Folder stream
//
// GETDIRFILES is answered with records (see [DirHeader], [ReadDirHeader]):
//
//	HHHH ":" name ":" size ":" attr [":" key "=" value]* ":" content
//
// HHHH is the header length in hex, from its own first digit through the
// ':' before the content; W and iptux write four digits. Names are not
// escaped. A directory record (attr 2) enters it, a RETPARENT record (attr
// 3, name ".") leaves it, and only regular files have content. iptux writes
// "%04x:%s:%.9x:%x:14=%x:16=%x:" with mtime in key 14 and ctime in 16; the
// stream ends with the RETPARENT that leaves the requested folder.
//
// # Host list
//
// IP Messenger can share its host list (see [HostList]): BR_ISGETLIST2,
// OKGETLIST, then GETLIST with a decimal start position, answered by ANSLIST:
//
//	"%5d" "\a" "%5d" "\a" { user "\a" host "\a" status "\a" addr "\a" port "\a" nick "\a" group "\a" }
//
// next start position (0 when done) and host count, then per host its
// decimal status, its address as text and htons(port) in decimal; "\b"
// stands for an empty field. iptux and FeiQ ignore the host list.
//
// # Text encoding
//
// With UTF8OPT the packet is UTF-8. Otherwise it is the sender's ANSI code page:
// GBK for Chinese Windows (decoded as GB18030), CP932 for Japanese. iptux sends
// UTF-8 without the flag and remembers, per peer, the first non-UTF-8 encoding
// it sees. [DecodeText] implements the receiving rules; the per-peer choice for
// sending lives with the caller, which keeps one [Charset] per peer.
//
// Sources: IP Messenger protocol.txt draft 14 and src/ipmsg.h (shirouzu/ipmsg
// v4.99r3); iptux 0.10.0 src/iptux-core; packets captured from iptux 0.8.3.
// The project's shared docs ipmsg-protocol.md and ipmsg-vectors.md collect them.
package ipmsg
