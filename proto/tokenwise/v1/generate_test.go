package tokenwisev1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// protocVersion matches the generated header lines that name protoc's
// version. Debian, other distributions and developers' machines carry
// different protoc releases whose output is otherwise the same, so only those
// lines may differ; the plugins' versions are pinned and must match.
var protocVersion = regexp.MustCompile(`(?m)^//\s+(-\s+)?protoc\s+v\S+\n`)

// TestGeneratedCodeMatchesProto regenerates the Go code with
// proto/generate.sh into a temporary directory and compares it with the
// committed files: a proto edited without regenerating fails here.
func TestGeneratedCodeMatchesProto(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("protoc is not installed (apt-get install protobuf-compiler)")
		}
		t.Skip("protoc is not installed; apt-get install protobuf-compiler to run this test")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join("..", "..", "generate.sh"))
	cmd.Env = append(os.Environ(), "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("proto/generate.sh: %v\n%s", err, b)
	}
	for _, name := range []string{"admin.pb.go", "admin_grpc.pb.go"} {
		fresh, err := os.ReadFile(filepath.Join(out, "tokenwise", "v1", name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(protocVersion.ReplaceAll(fresh, nil), protocVersion.ReplaceAll(committed, nil)) {
			t.Errorf("%s differs from what admin.proto generates: run bash proto/generate.sh", name)
		}
	}
}
