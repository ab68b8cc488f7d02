package pop

import "testing"

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.example.com/orders":             "https://api.example.com/orders",
		"HTTPS://API.Example.COM/orders":             "https://api.example.com/orders",
		"https://api.example.com:443/orders":         "https://api.example.com/orders",
		"http://api.example.com:80/orders":           "http://api.example.com/orders",
		"http://api.example.com:443/orders":          "http://api.example.com:443/orders",
		"https://api.example.com:08443/orders":       "https://api.example.com:8443/orders",
		"https://api.example.com":                    "https://api.example.com/",
		"https://api.example.com:/x":                 "https://api.example.com/x",
		"https://api.example.com/orders?a=b#c":       "https://api.example.com/orders",
		"https://api.example.com/orders#c?d":         "https://api.example.com/orders",
		"https://api.example.com/%7euser/%6F":        "https://api.example.com/~user/o",
		"https://api.example.com/a%2fb":              "https://api.example.com/a%2Fb",
		"https://api.example.com/a%2Fb":              "https://api.example.com/a%2Fb",
		"https://api.example.com/caf\xc3\xa9":        "https://api.example.com/caf%C3%A9",
		"https://api.example.com/a b":                "https://api.example.com/a%20b",
		"https://api.example.com/a/./b/../c":         "https://api.example.com/a/c",
		"https://api.example.com/a/%2E%2E/c":         "https://api.example.com/c",
		"https://api.example.com/../../x":            "https://api.example.com/x",
		"https://api.example.com/a/b/..":             "https://api.example.com/a/",
		"https://[::1]:8443/x":                       "https://[::1]:8443/x",
		"https://[::1]:443/x":                        "https://[::1]/x",
		"https://[::1]/x":                            "https://[::1]/x",
		"https://api.example.com/a;p=1/b:c@d!$&'()*": "https://api.example.com/a;p=1/b:c@d!$&'()*",
	} {
		got, err := NormalizeURL(in)
		if err != nil || got != want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestNormalizeURLRefuses(t *testing.T) {
	for _, in := range []string{
		"", "/orders", "ftp://example.com/", "https:///x", "https://user@example.com/",
		"https://example.com:99999/", "https://example.com:x/", "https://example.com/%zz", "https://example.com/%4",
	} {
		if got, err := NormalizeURL(in); err == nil {
			t.Errorf("NormalizeURL(%q) = %q; want an error", in, got)
		}
	}
}

func TestRequestURL(t *testing.T) {
	got, err := RequestURL("HTTPS", "Api.Example.com:443", "/a/../orders?x=1")
	if err != nil || got != "https://api.example.com/orders" {
		t.Fatalf("RequestURL = %q, %v", got, err)
	}
	if _, err := RequestURL("https", "example.com", "*"); err == nil {
		t.Fatal("RequestURL accepts OPTIONS *")
	}
}

func TestRequestScheme(t *testing.T) {
	for _, tc := range []struct{ xfp, scheme, want string }{
		{"", "http", "http"}, {"https", "http", "https"}, {"HTTPS, http", "http", "https"}, {" ", "HTTP", "http"},
	} {
		if got := RequestScheme(tc.xfp, tc.scheme); got != tc.want {
			t.Errorf("RequestScheme(%q, %q) = %q; want %q", tc.xfp, tc.scheme, got, tc.want)
		}
	}
}
