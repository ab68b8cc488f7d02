// Package childproc holds what every starter of a local child process
// shares — redisproc's redis-server, proxytest's nginx and Caddy, the
// tests' own tokenwise: a free loopback port to give it, and a buffer
// that collects its output while it runs, for error messages.
package childproc

import (
	"bytes"
	"net"
	"sync"
)

// FreePort asks the kernel for a loopback port nothing listens on right
// now. Another process may take it before the child binds it, so a
// starter may have to try again on a new port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Output is an io.Writer for a child's stdout or stderr that String may
// read while the child still writes: exec copies the output from its own
// goroutine.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
