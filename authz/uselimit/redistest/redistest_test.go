package redistest

import (
	"testing"
)

func TestStartSkipsOutsideCIWhenServerCannotStart(t *testing.T) {
	t.Setenv("CI", "")
	old := Binary
	Binary = "/nonexistent/redis-server"
	defer func() { Binary = old }()
	var skipped bool
	t.Run("start", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Start(t)
		t.Error("Start returned without a server")
	})
	if !skipped {
		t.Fatal("Start did not skip")
	}
}
