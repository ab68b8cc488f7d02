package pop

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/url"
)

// CertificateThumbprint returns the base64url SHA-256 of the DER client
// certificate in encoded, the URL-encoded PEM Envoy forwards as
// attributes.source.certificate (include_peer_certificate: true): the value a
// certificate-bound token carries in cnf["x5t#S256"] (RFC 8705 §3.1).
func CertificateThumbprint(encoded string) (string, error) {
	block := decodePEM(encoded, url.PathUnescape)
	if block == nil {
		// Form encoding (spaces as "+") is the other spelling in use.
		block = decodePEM(encoded, url.QueryUnescape)
	}
	if block == nil {
		return "", errors.New("the client certificate is not URL-encoded PEM")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", errors.New("the client certificate does not parse")
	}
	sum := sha256.Sum256(block.Bytes)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// decodePEM unescapes encoded and decodes its first PEM block, a CERTIFICATE.
// Envoy escapes with %20 and %2B, which PathUnescape reverses without
// turning an unescaped "+" of the base64 body into a space.
func decodePEM(encoded string, unescape func(string) (string, error)) *pem.Block {
	decoded, err := unescape(encoded)
	if err != nil {
		return nil
	}
	block, _ := pem.Decode([]byte(decoded))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	return block
}

// checkCertificate checks a certificate-bound token against the client
// certificate of the connection.
func checkCertificate(encoded, x5t string) *Error {
	if encoded == "" {
		return invalidToken(ReasonCertMissing, "the token is bound to a client certificate, and none was presented")
	}
	got, err := CertificateThumbprint(encoded)
	if err != nil {
		return invalidToken(ReasonCertMalformed, err.Error())
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(x5t)) != 1 {
		return invalidToken(ReasonCertMismatch, "the token is bound to another client certificate")
	}
	return nil
}
