package transfer_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/lanchat/lanchat/ipmsg"
	"github.com/lanchat/lanchat/transfer"
)

// The sending node shares a file under the PacketNo of the SENDMSG that
// offers it and serves its TCP port; the receiving node fetches the entry
// it found in that offer.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "report.txt")
	os.WriteFile(src, []byte("hello"), 0o644)

	// Sender: listen on the IPMsg port (here any free one) and share.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := transfer.NewServer(transfer.ServerConfig{})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()
	const offerNo = 1795380095
	files, err := srv.Share(offerNo, netip.MustParseAddr("127.0.0.1"), []string{src})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("offer entry: %q\n", ipmsg.AppendFileList(nil, files[:1], ipmsg.UTF8)[:18])

	// Receiver: fetch the entry from the offer.
	c := transfer.NewClient(transfer.ClientConfig{})
	path, err := c.Fetch(context.Background(), transfer.Request{
		From:    ln.Addr().(*net.TCPAddr).AddrPort(),
		Header:  ipmsg.Packet{No: 1795380200, User: []byte("bob"), Host: []byte("pc2")},
		Offer:   offerNo,
		File:    files[0],
		DestDir: filepath.Join(dir, "downloads"),
	})
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	fmt.Printf("%s: %s\n", filepath.Base(path), b)

	stop()
	fmt.Println("serve:", <-done)
	// Output:
	// offer entry: "10000:report.txt:5"
	// report.txt: hello
	// serve: <nil>
}
