package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchPrintsJSONAndWritesAProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.prof")
	code, out, errOut := tokenwise(t, dir, "bench", "--scenarios", "anonymous", "--duration", "150ms",
		"--rounds", "1", "--concurrency", "4", "--json", "--cpuprofile", prof)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Floor struct {
			ChecksPerSec float64 `json:"checks_per_sec"`
		} `json:"floor"`
		Scenarios []struct {
			Scenario     string  `json:"scenario"`
			ChecksPerSec float64 `json:"checks_per_sec"`
			Errors       int64   `json:"errors"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Scenario != "anonymous" || rep.Scenarios[0].ChecksPerSec <= 0 ||
		rep.Scenarios[0].Errors != 0 || rep.Floor.ChecksPerSec <= 0 {
		t.Fatalf("report: %+v", rep)
	}
	if !strings.Contains(errOut, "round 1/1 anonymous") {
		t.Errorf("no progress on stderr: %s", errOut)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("no CPU profile: %v", err)
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--scenarios", "nope"},
		{"bench", "--concurrency", "0"},
		{"bench", "extra"},
	} {
		code, _, errOut := tokenwise(t, "", args...)
		if code != 1 || !strings.HasPrefix(errOut, "tokenwise:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	code, out, _ := tokenwise(t, "", "bench", "--help")
	if code != 0 || !strings.Contains(out, "one-time-redis") || !strings.Contains(out, "--cpuprofile") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}
