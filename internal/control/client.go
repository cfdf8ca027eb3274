package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Client talks to a running node.
type Client struct {
	conn net.Conn
	sc   *bufio.Scanner
	enc  *json.Encoder
}

// Dial connects to the node using dataDir.
func Dial(dataDir string) (*Client, error) {
	c, err := net.Dial("unix", SocketPath(dataDir))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (%s): start it with `lanchat serve` or the desktop app", ErrNotRunning, dataDir)
		}
		return nil, fmt.Errorf("control socket: %w", err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64*1024), maxRequest)
	return &Client{conn: c, sc: sc, enc: json.NewEncoder(c)}, nil
}

// Close hangs up.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends a request and calls each for every item of the answer until
// the answer ends. An error from each stops reading and is returned.
func (c *Client) Do(req Request, each func(kind string, data json.RawMessage) error) error {
	if err := c.enc.Encode(req); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	for c.sc.Scan() {
		var r Response
		if err := json.Unmarshal(c.sc.Bytes(), &r); err != nil {
			return fmt.Errorf("control: bad answer: %w", err)
		}
		switch {
		case r.Error != "":
			return &RemoteError{Msg: r.Error}
		case r.Done:
			return nil
		}
		if err := each(r.Kind, r.Data); err != nil {
			return err
		}
	}
	if err := c.sc.Err(); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return fmt.Errorf("control: the node closed the connection")
}

// Events subscribes and calls each for every event until each returns an
// error or the node stops. subscribed runs once the subscription is live.
func (c *Client) Events(subscribed func(), each func(kind string, data json.RawMessage) error) error {
	if err := c.Do(Request{Op: "events"}, nil); err != nil {
		return err
	}
	if subscribed != nil {
		subscribed()
	}
	for c.sc.Scan() {
		var r Response
		if err := json.Unmarshal(c.sc.Bytes(), &r); err != nil {
			return fmt.Errorf("control: bad event: %w", err)
		}
		if err := each(r.Kind, r.Data); err != nil {
			return err
		}
	}
	return c.sc.Err()
}
