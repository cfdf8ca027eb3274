// Package transfer moves offered files and folders over TCP the way IP
// Messenger, Feige, FeiQ and iptux do: a Server sends what was offered, a
// Client fetches it into a folder.
//
// # Offer
//
// Files travel outside any message: a SENDMSG|FILEATTACHOPT datagram offers
// them (see ipmsg.AppendFileList), and the receiver pulls each one over its
// own TCP connection to the sender's IPMsg port (2425, the UDP port's
// number). [Server.Share] registers the paths behind an offer and returns the
// entries to put in it: file IDs 10000, 10001, … in offer order, as iptux
// numbers them, so that a client that requests the decimal digits instead of
// hex (served by iptux, see ipmsg.FileRequest.IDCandidates) can never hit a
// different file of the same offer; sizes and mtimes from stat; attr a bare 1
// (file) or 2 (folder), since iptux rejects flag bits. Folders are offered
// with size 0, as IP Messenger does.
//
// # Request
//
// The client opens TCP and writes one IPMsg packet, and nothing after it
// (protocol §6.3, §6.5):
//
//	Version ":" PacketNo ":" User ":" Host ":" 96 ":" offer ":" id ":" offset ":"   GETFILEDATA
//	Version ":" PacketNo ":" User ":" Host ":" 98 ":" offer ":" id ":"              GETDIRFILES
//
// offer is the offer's PacketNo, id the file ID, offset where to start; all
// three in hex (the ID is decimal in the offer). [Client.Fetch] sends the
// command without options (IP Messenger and FeiQ refuse FILEATTACHOPT there,
// §13 item 3) unless the caller adds some, and offset 0 except when it
// resumes from a peer known to honour offsets: IP Messenger and iptux read
// the offset and stream from 0 anyway. The server accepts the request with
// or without the trailing ':' and with iptux's NUL instead, reads it under a
// deadline, and serves only a file of an offer made to the connection's
// source IP (IP Messenger also checks the IP). Anything else is refused by
// closing the connection, since the protocol has no error reply.
//
// # File data
//
// GETFILEDATA is answered with size−offset raw bytes and then the server
// closes. No header and no trailer: the receiver knows the size from the
// offer, so fewer bytes before the close mean a cut transfer, and more mean a
// sender whose file changed. A server never sends more than the offered size;
// a file that shrank since the offer is refused before any byte goes out.
//
// # Folder stream
//
// GETDIRFILES is answered with a sequence of records (protocol §6.4; see
// ipmsg.DirHeader):
//
//	stream = dir-record { record } retparent
//	record = dir-record { record } retparent | file-record content
//	header = HHHH ":" name ":" size ":" attr [ ":" key "=" value ]* ":"
//
// HHHH is the header's length in hex, from its first digit through its last
// ':'. A dir-record has attr 2 and size 0 and enters that folder; a
// retparent has attr 3, name "." and size 0 and leaves it; a file-record has
// attr 1 and is followed by exactly size bytes of content. Key 14 is the
// mtime and key 16 the creation time (iptux: ctime), both hex unix seconds;
// this server sends the mtime in both. The stream ends with the retparent
// that leaves the requested folder, after which the server closes. Names
// are neither escaped nor quoted, so a ':' in a name is sent as '_'; they
// are in the peer's charset, or UTF-8 when the request carried UTF8OPT (what
// IP Messenger does after a UTF-8 offer). A GETDIRFILES for a regular file is
// answered with that file's record alone, as IP Messenger expects.
//
// # Names from the network
//
// Every name a peer sends, in an offer or a folder record, passes
// [CheckName] before it touches the disk, and all writes go through an
// os.Root opened on the destination folder, so no name, symlink or ".." can
// reach outside it. Nothing is overwritten: a file that exists makes the next
// one "name (1).ext", a folder "name (1)".
//
// Sources: IP Messenger protocol.txt and src/mainwinfile.cpp (shirouzu/ipmsg
// v4.99r3), iptux 0.10.0 src/iptux-core (SendFile.cpp, SendFileData.cpp,
// RecvFileData.cpp), packets captured from iptux 0.8.3; collected in the
// project's ipmsg-protocol.md §6 and ipmsg-vectors.md groups 4 and 5.
package transfer
