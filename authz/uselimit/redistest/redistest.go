// Package redistest runs a real redis-server process for tests: on a free
// loopback port, without persistence, stopped when the test ends. Tests can
// kill it to simulate an outage, pause it to simulate a hung server, and
// start it again on the same address.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is the redis-server executable Start runs.
var Binary = "redis-server"

// startTimeout bounds how long Start waits for the server to answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server process on a free loopback port, stopped on t.Cleanup.
type Server struct {
	t     testing.TB
	port  int
	extra []string
	dir   string

	mu     sync.Mutex
	proc   *os.Process   // nil when stopped
	exited chan struct{} // closed once the process has exited
}

// Start runs redis-server on a free loopback port and waits until it answers
// PING. extra arguments are appended to the command line (for example
// "--requirepass", "secret"). When redis-server cannot start, Start fails the
// test if the environment variable CI is "true" and skips it otherwise.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, extra: extra, dir: t.TempDir()}
	var err error
	// A free port found by listening can be taken before redis binds it, so try a few.
	for range 3 {
		if s.port, err = freePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	msg := fmt.Sprintf("redistest: cannot start %s: %v", Binary, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server at once (SIGKILL), as an outage would. It is safe to
// call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc = nil
}

// Restart starts the server again on the same port, so it has the same
// address; it stops the running one first. Data is not kept. It fails the test
// when the server cannot start.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	// The old listener's port can take a moment to be free again.
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart on %s: %v", s.Addr(), err)
}

// Pause stops the process with SIGSTOP: connections stay open but nothing is
// answered, like a hung server. Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		_ = s.proc.Signal(sig)
	}
}

// start runs the process and waits for PING; on failure nothing is left running.
func (s *Server) start() error {
	args := append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
	}, s.extra...)
	cmd := exec.Command(Binary, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitReady(s.Addr(), exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%w; output: %s", err, out.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc, s.exited = cmd.Process, exited
	return nil
}

// waitReady polls addr with PING until a reply comes, the process exits or
// startTimeout passes.
func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited")
		default:
		}
		if ping(addr) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no PING reply within " + startTimeout.String())
}

// ping sends an inline PING. Any reply counts as ready: a server started with
// --requirepass answers -NOAUTH, which still shows it is serving.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line == "" || (line[0] != '+' && line[0] != '-') {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
