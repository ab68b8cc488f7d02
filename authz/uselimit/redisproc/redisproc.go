// Package redisproc runs real redis-server processes on free loopback ports,
// without persistence: one server, a Redis Cluster, or a master with
// replicas watched by redis-sentinel, for the tests (through package
// redistest) and for `tokenwise bench`. A server can be killed to simulate an outage, paused to
// simulate a hung server, and started again on the same address.
package redisproc

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tokenwise/tokenwise/authz/childproc"
)

// startTimeout bounds how long a start waits for the server to answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server process on a loopback port.
type Server struct {
	binary string
	port   int
	extra  []string
	dir    string
	roots  *x509.CertPool // set for a TLS server
	// conf is a config file given before the other arguments (a sentinel's).
	conf string
	// cluster makes the server a Redis Cluster node with its bus on busPort.
	cluster bool
	busPort int

	mu     sync.Mutex
	proc   *os.Process   // nil when stopped
	exited chan struct{} // closed once the process has exited
}

// Start runs binary (redis-server) on a free loopback port with its files in
// dir and waits until it answers PING. extra arguments are appended to the
// command line (for example "--requirepass", "secret").
func Start(binary, dir string, extra ...string) (*Server, error) {
	return launch(&Server{binary: binary, extra: extra, dir: dir})
}

// StartTLS is Start for a server that only speaks TLS, with a certificate
// for 127.0.0.1 that RootCAs trusts. Clients need no certificate of their own.
func StartTLS(binary, dir string, extra ...string) (*Server, error) {
	s := &Server{binary: binary, extra: extra, dir: dir}
	var err error
	if s.roots, err = writeCert(s.dir); err != nil {
		return nil, fmt.Errorf("redisproc: certificate: %w", err)
	}
	return launch(s)
}

// launch starts s on a free port.
func launch(s *Server) (*Server, error) {
	var err error
	// A free port found by listening can be taken before redis binds it, so try a few.
	for range 3 {
		if s.port, err = childproc.FreePort(); err != nil {
			continue
		}
		if s.cluster {
			if s.busPort, err = childproc.FreePort(); err != nil {
				continue
			}
		}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("redisproc: cannot start %s: %w", s.binary, err)
}

// RootCAs trusts the certificate of a StartTLS server (nil for Start).
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// Addr is the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// addrs are the servers' host:port addresses.
func addrs(servers []*Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.Addr()
	}
	return out
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

// running reports whether the process runs (it was not stopped).
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Restart starts the server again on the same port, so it has the same
// address; it stops the running one first. Data is not kept.
func (s *Server) Restart() error {
	s.Stop()
	var err error
	// The old listener's port can take a moment to be free again.
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redisproc: restart on %s: %w", s.Addr(), err)
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
	cmd := exec.Command(s.binary, s.args()...)
	out := &childproc.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitReady(s.dialer(), exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%w; output: %s", err, out.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc, s.exited = cmd.Process, exited
	return nil
}

// args is the command line: no persistence, loopback only, and for a TLS
// server the port speaks TLS and plain connections are off.
func (s *Server) args() []string {
	port := strconv.Itoa(s.port)
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir)
	if s.cluster {
		// The node's identity and slots stay in dir across a Restart.
		args = append(args, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(s.busPort),
			"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
	}
	if s.roots == nil {
		args = append(args, "--port", port)
	} else {
		args = append(args, "--port", "0", "--tls-port", port,
			"--tls-cert-file", filepath.Join(s.dir, "cert.pem"),
			"--tls-key-file", filepath.Join(s.dir, "key.pem"),
			"--tls-auth-clients", "no")
	}
	return append(args, s.extra...)
}

// waitReady polls addr with PING until a reply comes, the process exits or
// startTimeout passes.
func waitReady(dial func() (net.Conn, error), exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited")
		default:
		}
		if ping(dial) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no PING reply within " + startTimeout.String())
}

// ping sends an inline PING. Any reply counts as ready: a server started with
// --requirepass answers -NOAUTH, which still shows it is serving.
func ping(dial func() (net.Conn, error)) error {
	c, err := dial()
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

// dialer connects to the server, over TLS for a StartTLS server.
func (s *Server) dialer() func() (net.Conn, error) {
	addr := s.Addr()
	d := &net.Dialer{Timeout: time.Second}
	if s.roots == nil {
		return func() (net.Conn, error) { return d.Dial("tcp", addr) }
	}
	cfg := &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return func() (net.Conn, error) { return tls.DialWithDialer(d, "tcp", addr, cfg) }
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key to
// dir as cert.pem and key.pem, and returns a pool that trusts it.
func writeCert(dir string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	return roots, nil
}
