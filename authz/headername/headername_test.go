package headername

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"x-user-id", "X-Tenant", "x_scope.v1", "authorization", "x-!#$%&'*+-.^_`|~"} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v, want nil", ok, err)
		}
	}
	for name, want := range map[string]string{
		":authority": "pseudo-header", ":path": "pseudo-header",
		"host": "connection or routing", "Host": "connection or routing", "connection": "connection or routing",
		"transfer-encoding": "connection or routing", "upgrade": "connection or routing", "te": "connection or routing",
		"keep-alive": "connection or routing", "proxy-connection": "connection or routing", "content-length": "connection or routing",
		"": "RFC 9110 token", "x user": "RFC 9110 token", "x-a\r\nx-b": "RFC 9110 token", "x:y": "RFC 9110 token",
		"x\x00": "RFC 9110 token", "é": "RFC 9110 token", "(x)": "RFC 9110 token",
	} {
		err := Check(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want an error about %s", name, err, want)
		}
	}
}
