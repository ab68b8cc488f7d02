package childproc

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

func TestFreePortCanBeListenedOn(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d: %v", port, err)
	}
	l.Close()
}

func TestOutputKeepsConcurrentWrites(t *testing.T) {
	var o Output
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, _ = o.Write([]byte("ab"))
			_ = o.String()
		})
	}
	wg.Wait()
	if got := len(o.String()); got != 100 {
		t.Fatalf("%d bytes, want 100", got)
	}
}
