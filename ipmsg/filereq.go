package ipmsg

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

// FileRequest is the argument of GETFILEDATA (a file) or GETDIRFILES (a
// folder), the packet a receiver sends on a new TCP connection to fetch an
// offered attachment. Every number is hex on the wire.
type FileRequest struct {
	Offer  uint64 // PacketNo of the SENDMSG that offered the file
	ID     uint64 // file ID from the offer; see IDCandidates
	Offset uint64 // where to start; W and iptux always send 0 and ignore it
	Dir    bool   // GETDIRFILES: answer with a folder stream
}

// MaxFileRequest bounds the request ReadFileRequest reads: a header with
// names of ordinary length and three hex numbers fit many times over.
const MaxFileRequest = 4096

// ParseFileRequest decodes the extra of a GETFILEDATA or GETDIRFILES packet:
// "offer:id[:offset]" in hex, with or without a trailing ':' (W, FeiQ) and
// NUL (iptux). GETDIRFILES may carry an offset too (iptux appends ":0").
// Command options (UTF8OPT, iptux's FILEATTACHOPT) are the caller's to read.
func ParseFileRequest(p Packet) (FileRequest, error) {
	r := FileRequest{Dir: p.Command.Mode() == GetDirFiles}
	if m := p.Command.Mode(); m != GetFileData && m != GetDirFiles {
		return r, errMalformed("file request: command " + m.String())
	}
	args := bytes.TrimSuffix(p.Section(0), []byte(":"))
	var f [3][]byte
	n := 0
	for field := range bytes.SplitSeq(args, []byte(":")) {
		if n == len(f) {
			return r, errMalformed("file request: more than 3 arguments in " + quote(args))
		}
		f[n] = field
		n++
	}
	if n < 2 {
		return r, errMalformed("file request: " + itoa(n) + " arguments, want 2 or 3")
	}
	return r, r.parseArgs(f[:n])
}

// parseArgs fills r from the offer, ID and optional offset fields.
func (r *FileRequest) parseArgs(f [][]byte) error {
	dst := [...]*uint64{&r.Offer, &r.ID, &r.Offset}
	for i, field := range f {
		v, err := parseHex(field, 64)
		if err != nil {
			return errMalformed("file request: " + [...]string{"offer", "id", "offset"}[i] + " " + quote(field))
		}
		*dst[i] = v
	}
	return nil
}

// IDCandidates returns the file IDs the request may mean, in the order a
// server should look them up. First is ID, read as hex as IP Messenger, FeiQ
// and iptux send it. When ID's hex digits are all decimal digits, the same
// digits read as decimal follow: a client that copied the offer's decimal ID
// sends that, and iptux serves it (vector FILE-4), so lanchat does too.
func (r FileRequest) IDCandidates() []uint64 {
	var buf [16]byte
	dec, err := parseDecimal(strconv.AppendUint(buf[:0], r.ID, 16))
	if err != nil || dec == r.ID {
		return []uint64{r.ID}
	}
	return []uint64{r.ID, dec}
}

// Command returns the mode to send the request with: plain GETFILEDATA or
// GETDIRFILES, without the FILEATTACHOPT that iptux adds only for iptux.
func (r FileRequest) Command() Command {
	if r.Dir {
		return GetDirFiles
	}
	return GetFileData
}

// AppendFileRequest appends the extra of r's request in the portable form
// IP Messenger sends: "offer:id:offset:" for a file, "offer:id:" for a
// folder, all hex. lanchat requests files with Offset 0, since only FeiQ
// clones honour it.
func AppendFileRequest(dst []byte, r FileRequest) []byte {
	dst = strconv.AppendUint(dst, r.Offer, 16)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, r.ID, 16)
	dst = append(dst, ':')
	if !r.Dir {
		dst = strconv.AppendUint(dst, r.Offset, 16)
		dst = append(dst, ':')
	}
	return dst
}

// ReadFileRequest reads one request from the start of a file-transfer TCP
// connection and parses it. Nothing delimits the request, so like iptux it
// reads the five header fields and then the arguments: three for
// GETFILEDATA, two for GETDIRFILES, each ended by ':' or NUL; a NUL, or the
// end of the stream after a digit, ends the request early. It reads nothing
// past that, and at most MaxFileRequest bytes: iptux's "0\x00" after a
// GETDIRFILES and FeiQ's NUL after the last ':' stay unread, which is
// harmless since a client sends nothing else. A client that stops without
// either terminator blocks the read, so callers set a deadline on the
// connection. The Packet refers to a buffer of its own.
func ReadFileRequest(r *bufio.Reader) (Packet, FileRequest, error) {
	line, err := readFields(r, nil, 5, false)
	if err != nil {
		return Packet{}, FileRequest{}, err
	}
	p, err := Parse(line)
	if err != nil {
		return p, FileRequest{}, err
	}
	args := 3
	switch p.Command.Mode() {
	case GetDirFiles:
		args = 2
	case GetFileData:
	default:
		return p, FileRequest{}, errMalformed("file request: command " + p.Command.Mode().String())
	}
	if line, err = readFields(r, line, args, true); err != nil {
		return p, FileRequest{}, err
	}
	p, _ = Parse(line) // the header parsed above; the rest is Extra
	req, err := ParseFileRequest(p)
	return p, req, err
}

// readFields appends bytes of r to line until n fields have ended with ':'.
// In the arguments (args), a NUL or the end of the stream after some bytes
// also ends the request.
func readFields(r *bufio.Reader, line []byte, n int, args bool) ([]byte, error) {
	for n > 0 {
		if len(line) >= MaxFileRequest {
			return nil, errTooLarge("file request longer than limit " + itoa(MaxFileRequest) + " bytes")
		}
		c, err := r.ReadByte()
		switch {
		case err == io.EOF && len(line) == 0:
			return nil, io.EOF
		case err == io.EOF && args && line[len(line)-1] != ':':
			return line, nil
		case err == io.EOF:
			return nil, &ioError{"read file request", io.ErrUnexpectedEOF}
		case err != nil:
			return nil, &ioError{"read file request", err}
		}
		line = append(line, c)
		switch {
		case c == ':':
			n--
		case c == 0 && args:
			return line, nil
		}
	}
	return line, nil
}
