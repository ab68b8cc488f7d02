// Package proxytest starts real proxies — nginx and Caddy — for tests of
// HTTP authorization mode: each on a free loopback port, from a generated
// configuration in the test's temporary directory, stopped when the test
// ends. A missing binary skips the test, except under CI=true, where it
// fails: CI installs both.
package proxytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/childproc"
)

// Proxy is one running proxy.
type Proxy struct {
	// Addr is host:port of its listener; URL is http://Addr.
	Addr string
	URL  string
	// Dir holds its configuration and logs.
	Dir  string
	cmd  *exec.Cmd
	out  *childproc.Output
	logs []string
}

// Logs returns the proxy's output and log files, for a failing test's message.
func (p *Proxy) Logs() string {
	var b strings.Builder
	b.WriteString(p.out.String())
	for _, f := range p.logs {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}

// Binary finds a proxy's executable: PATH, then the Debian locations.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; CI must install it (apt-get install %s)", name, name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// FreePort returns a loopback port nothing listens on right now (see
// childproc.FreePort).
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// StartNginx runs nginx with the http block's body that conf returns for
// the port it must listen on (upstream and server blocks); the process
// settings, temp paths and logs are set here.
func StartNginx(t testing.TB, conf func(port int) string) *Proxy {
	t.Helper()
	bin := Binary(t, "nginx")
	dir := t.TempDir()
	port := FreePort(t)
	user := ""
	if os.Geteuid() == 0 {
		// Workers run as this user and must reach the temp directory.
		user = "user root;\n"
	}
	main := fmt.Sprintf(`%sworker_processes 1;
error_log %[2]s/error.log info;
pid %[2]s/nginx.pid;
events { worker_connections 256; }
http {
  access_log %[2]s/access.log;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
%[3]s
}
`, user, dir, conf(port))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, main)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-g", "daemon off;")
	p := start(t, cmd, dir, port, filepath.Join(dir, "error.log"))
	return p
}

// StartCaddy runs Caddy with the Caddyfile conf returns for its port (site
// blocks; SiteAddress gives the address line), after global options that
// turn off the admin API and automatic HTTPS.
func StartCaddy(t testing.TB, conf func(port int) string) *Proxy {
	t.Helper()
	bin := Binary(t, "caddy")
	dir := t.TempDir()
	port := FreePort(t)
	file := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/data
}

%[2]s
`, dir, conf(port))
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
	return start(t, cmd, dir, port)
}

// SiteAddress is a Caddy site block's opening for a plain-HTTP site on the
// loopback port, whatever Host the client names.
func SiteAddress(port int) string {
	return fmt.Sprintf("http://:%d {\n\tbind 127.0.0.1", port)
}

// start runs cmd and waits until its port accepts connections; the proxy
// is stopped gracefully when the test ends.
func start(t testing.TB, cmd *exec.Cmd, dir string, port int, logs ...string) *Proxy {
	t.Helper()
	p := &Proxy{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, cmd: cmd, out: &childproc.Output{}, logs: logs}
	p.URL = "http://" + p.Addr
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Its own process group, so a stop reaches nginx's workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { p.stop(exited) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			conn.Close()
			return p
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before listening:\n%s", filepath.Base(cmd.Path), p.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s:\n%s", filepath.Base(cmd.Path), p.Addr, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the proxy's process group: SIGTERM, then SIGKILL if it lingers.
func (p *Proxy) stop(exited chan struct{}) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
}
