package config

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// varPattern matches ${VAR}, ${VAR:-default} and ${VAR:-}.
var varPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// variables stands in for the ${VAR} references of one file while it is
// parsed: each is replaced in the text by a placeholder that YAML reads as a
// plain word anywhere (`{db: ${DB}}` would otherwise end the flow mapping at
// the variable's brace), and expanded in the parsed values afterwards.
type variables struct {
	nonce string
	refs  []string
}

// hide replaces each ${...} in text with a placeholder.
func (v *variables) hide(text string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	v.nonce = "twvar" + hex.EncodeToString(b[:]) + "n"
	return varPattern.ReplaceAllStringFunc(text, func(m string) string {
		v.refs = append(v.refs, m)
		return v.nonce + strconv.Itoa(len(v.refs)-1) + "x"
	})
}

// reveal puts the references back into one value.
func (v *variables) reveal(value string) string {
	if v == nil || v.nonce == "" || !strings.Contains(value, v.nonce) {
		return value
	}
	for i := range v.refs { // the closing x keeps n1x from matching inside n10x
		value = strings.ReplaceAll(value, v.nonce+strconv.Itoa(i)+"x", v.refs[i])
	}
	return value
}

// expandNode replaces ${VAR} references in every scalar value below n with
// the environment's value. Expanding values after parsing (not the file's
// text) keeps a variable's content from changing the file's structure, lets
// a fault name the YAML path, and leaves comments alone. An unset variable
// without a default is an error naming it.
func (v *variables) expandNode(n *yaml.Node, path string) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			if err := v.expandNode(c, p); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			n.Content[i].Value = v.reveal(n.Content[i].Value)
			if err := v.expandNode(n.Content[i+1], join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		n.Value = v.reveal(n.Value)
		return expandScalar(n, path)
	}
	return nil
}

func expandScalar(n *yaml.Node, path string) error {
	if !strings.Contains(n.Value, "${") {
		return nil
	}
	var missing string
	value := varPattern.ReplaceAllStringFunc(n.Value, func(m string) string {
		sub := varPattern.FindStringSubmatch(m)
		if v, ok := os.LookupEnv(sub[1]); ok && (v != "" || sub[2] == "") {
			return v // ${VAR:-x} also takes x when VAR is set but empty, as a shell does
		}
		if sub[2] != "" {
			return sub[3]
		}
		if missing == "" {
			missing = sub[1]
		}
		return ""
	})
	if missing != "" {
		return &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf(
			"${%s} is not set in the environment; set it, or give a default: ${%s:-value} (${%s:-} for empty)", missing, missing, missing)}
	}
	n.Value = value
	if n.Style == 0 {
		// A plain scalar is typed by what it now says: `db: ${REDIS_DB}` is a number.
		n.Tag = ""
	}
	return nil
}

// join appends key to a YAML path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
