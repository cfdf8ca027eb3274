package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envKillChild, when set to a data folder, makes TestKillChild the child process of
// TestKill9: it stores and acknowledges messages until it is killed.
const envKillChild = "LANCHAT_STORE_KILL_CHILD_DIR"

const (
	killSenders   = 8
	killMinStored = 3000 // acknowledged enqueues seen before the kill
	killAckEvery  = 7
)

// TestKill9 kills a process that is storing messages with SIGKILL in the middle of a
// burst, reopens its store, and checks that every message whose Enqueue returned
// (printed "E id seq") is there exactly once, in order, unless it was acknowledged,
// and that nothing acknowledged by Inbox.Ack (printed "A seq" when Ack returned) is
// delivered again. An Ack under way at the kill ("a seq" without "A seq") may or may
// not have happened.
func TestKill9(t *testing.T) {
	t.Parallel()
	if os.Getenv(envKillChild) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKillChild+"="+dir)
	cmd.Stderr = t.Output()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stored := map[string]uint64{} // ID -> seq, as acknowledged to the child
	var ackFloor uint64           // acks confirmed: never delivered again
	var ackIntent uint64          // acks started: maybe done, maybe not
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "E":
			seq, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				t.Fatalf("child line %q: %v", sc.Text(), err)
			}
			stored[f[1]] = seq
		case len(f) == 2 && f[0] == "A":
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("child line %q: %v", sc.Text(), err)
			}
			ackFloor = max(ackFloor, seq)
		case len(f) == 2 && f[0] == "a":
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("child line %q: %v", sc.Text(), err)
			}
			ackIntent = max(ackIntent, seq)
		}
		if !killed && len(stored) >= killMinStored && ackFloor > 0 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true // keep reading: lines written before the kill are still in the pipe
		}
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL mid-burst: %v (killed=%v, %d stored)", err, killed, len(stored))
	}
	t.Logf("killed after %d acknowledged enqueues, ack floor %d", len(stored), ackFloor)

	s := openStore(t, Config{Dir: dir})
	n := pending(t, s, "bob")
	in, err := s.Inbox(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]uint64{}
	lastN := map[string]int{} // per sender, the last message number delivered
	var last uint64
	for range n {
		d := next(t, in)
		if d.Seq <= ackFloor {
			t.Fatalf("acknowledged seq %d delivered again (ack floor %d)", d.Seq, ackFloor)
		}
		if d.Seq <= last {
			t.Fatalf("seq %d delivered after %d", d.Seq, last)
		}
		last = d.Seq
		if prev, dup := seen[d.ID]; dup {
			t.Fatalf("%s delivered twice, seq %d and %d", d.ID, prev, d.Seq)
		}
		seen[d.ID] = d.Seq
		sender, num, _ := strings.Cut(d.ID, "/")
		k, _ := strconv.Atoi(num)
		if p, ok := lastN[sender]; ok && k <= p {
			t.Fatalf("%s delivered after %s/%d", d.ID, sender, p)
		}
		lastN[sender] = k
	}
	expectEmpty(t, in)
	missing := 0
	for id, seq := range stored {
		if seq <= max(ackFloor, ackIntent) {
			continue // acknowledged, or maybe acknowledged when the kill came
		}
		got, ok := seen[id]
		switch {
		case !ok:
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged %s (seq %d) lost", id, seq)
			}
		case got != seq:
			t.Errorf("%s stored as seq %d but delivered as %d", id, seq, got)
		}
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged messages lost", missing)
	}
}

// TestKillChild is the child of TestKill9; it does nothing in a normal run.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(envKillChild)
	if dir == "" {
		t.Skip("only run by TestKill9")
	}
	s := openStore(t, Config{Dir: dir})
	enroll(t, s, "alice", "bob")
	var mu sync.Mutex
	print := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(fmt.Sprintf(format, args...)) // one write per line
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range killSenders {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				e := env(fmt.Sprintf("s%d", i), "bob", n)
				e.From = "alice"
				seq, _, err := s.Enqueue(ctx, e)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("enqueue: %v", err)
					}
					return
				}
				print("E %s %d\n", e.ID, seq)
			}
		})
	}
	wg.Go(func() {
		in, err := s.Inbox(ctx, "bob")
		if err != nil {
			t.Error(err)
			return
		}
		for n := 1; ; n++ {
			d, err := in.Next(ctx)
			if err != nil {
				return
			}
			if n%killAckEvery == 0 {
				print("a %d\n", d.Seq) // about to ack: may be done when the kill comes
				if err := in.Ack(d.Seq); err != nil {
					t.Errorf("ack: %v", err)
					return
				}
				print("A %d\n", d.Seq)
			}
		}
	})
	wg.Wait()
}
