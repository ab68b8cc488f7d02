package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
)

// MaxAnswerBytes caps an introspection answer; a bigger one is a failure,
// so a broken or hostile endpoint cannot make tokenwise buffer without bound.
const MaxAnswerBytes = 64 << 10

// maxRedirects is how many redirects one request may follow.
const maxRedirects = 3

// post sends token to the endpoint and reads the answer.
func (c *Client) post(ctx context.Context, token string) (*Answer, error) {
	endpoint, err := c.url(ctx)
	if err != nil {
		return nil, err
	}
	req, err := c.request(ctx, endpoint, token)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Read a little of the error page so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxAnswerBytes))
		return nil, fmt.Errorf("%s answered status %d", endpoint, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", endpoint, err)
	}
	if len(body) > MaxAnswerBytes {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", endpoint, MaxAnswerBytes)
	}
	a, err := parse(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", endpoint, err)
	}
	return a, nil
}

// url is the configured endpoint, else the one discovery names, checked
// against the same rule.
func (c *Client) url(ctx context.Context) (string, error) {
	if c.cfg.URL != "" {
		return c.cfg.URL, nil
	}
	u, err := c.endpoint(ctx)
	if err != nil {
		return "", err
	}
	if err := config.CheckIntrospectionURL(u); err != nil {
		return "", fmt.Errorf("introspection_endpoint %q: %w", u, err)
	}
	return u, nil
}

// request builds the RFC 7662 §2.1 POST with the client authentication.
func (c *Client) request(ctx context.Context, endpoint, token string) (*http.Request, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	switch c.cfg.Auth {
	case config.AuthClientSecretPost:
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret)
	case config.AuthNone:
		if c.cfg.ClientID != "" { // a public client names itself (RFC 6749 §2.3)
			form.Set("client_id", c.cfg.ClientID)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	switch c.cfg.Auth {
	case config.AuthClientSecretBasic:
		// RFC 6749 §2.3.1: id and secret are form-urlencoded before they
		// are joined and base64-encoded; a ':' or '%' in a secret otherwise
		// breaks at servers that decode as the RFC says.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	case config.AuthBearer:
		req.Header.Set("Authorization", "Bearer "+c.cfg.ClientSecret)
	}
	return req, nil
}

// parse reads an RFC 7662 §2.2 answer: a JSON object with a boolean active.
// Anything else is a failure, not an inactive token: the endpoint is broken
// or is not an introspection endpoint.
func parse(body []byte) (*Answer, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, errors.New("answer is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("answer has data after the JSON object")
	}
	active, ok := claims["active"].(bool)
	if !ok {
		return nil, errors.New("answer has no boolean active member")
	}
	delete(claims, "active")
	a := &Answer{Active: active, Claims: claims}
	if exp, ok := claims["exp"].(json.Number); ok {
		a.Expiry = numericDate(exp)
	}
	return a, nil
}

// numericDate reads a NumericDate (seconds since the epoch, maybe with a
// fraction); zero when it is not a finite number in range.
func numericDate(n json.Number) time.Time {
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<40 {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// httpClient is base (or a default) with the introspection redirect rule.
func httpClient(base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	} else {
		c = http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			ForceAttemptHTTP2:     true,
		}}
	}
	c.CheckRedirect = checkRedirect
	return &c
}

// checkRedirect follows a redirect only under the endpoint's own rule (https,
// or http to loopback), a few times, and only when the POST stays a POST: a
// 301/302/303 would turn it into a GET that drops the token, which no
// introspection endpoint answers usefully.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errors.New("too many redirects")
	}
	if err := config.CheckIntrospectionURL(req.URL.String()); err != nil {
		return fmt.Errorf("redirect to %s refused: %w", req.URL.Redacted(), err)
	}
	if req.Method != http.MethodPost {
		return errors.New("redirect that turns the POST into a " + req.Method + " refused")
	}
	return nil
}
