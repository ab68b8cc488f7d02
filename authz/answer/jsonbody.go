package answer

import "unicode/utf8"

// errorBody is the JSON deny body {"error": …, "error_description": …}
// (description left out when empty), byte for byte what encoding/json
// writes for it, without encoding/json's reflection and encoder state: a
// deny is as hot a path as an allow.
func errorBody(errCode, description string) string {
	b := make([]byte, 0, 40+len(errCode)+len(description))
	b = append(b, `{"error":`...)
	b = appendJSONString(b, errCode)
	if description != "" {
		b = append(b, `,"error_description":`...)
		b = appendJSONString(b, description)
	}
	return string(append(b, '}'))
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json does by default: quotes,
// backslash escapes for control characters, <, > and & as \u00XX (HTML-safe),
// invalid UTF-8 as \ufffd, and U+2028/U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
