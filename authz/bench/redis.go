package bench

import (
	"bufio"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"time"
)

// redisProc is a redis-server this package started.
type redisProc struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedis runs binary on a free loopback port without persistence and
// waits until it answers PING.
func startRedis(binary, dir string) (*redisProc, error) {
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A port found free can be taken before redis binds it: try a few.
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		r := &redisProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
		r.cmd = exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir)
		if err := r.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { _ = r.cmd.Wait(); close(r.exited) }()
		if lastErr = r.waitReady(); lastErr == nil {
			return r, nil
		}
		r.stop()
	}
	return nil, lastErr
}

// waitReady polls with an inline PING for up to ten seconds.
func (r *redisProc) waitReady() error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return errors.New("redis-server exited")
		default:
		}
		if ping(r.addr) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("redis-server did not answer PING")
}

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
	if line != "+PONG\r\n" {
		return errors.New("unexpected PING reply")
	}
	return nil
}

// stop kills the process and waits for it.
func (r *redisProc) stop() {
	_ = r.cmd.Process.Kill()
	<-r.exited
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
