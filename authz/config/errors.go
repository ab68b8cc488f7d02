package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FieldError is a fault at one place in the file, said in the file's own
// words: the YAML path (issuers[0].audiences) and line, never Go's types.
type FieldError struct {
	// Path is the YAML path of the value or key at fault.
	Path string
	// Line is the 1-based line in the file (0: unknown).
	Line int
	// Msg says what is wrong and what to write instead.
	Msg string
}

// Error is the one-line message: where the field is, then Msg.
func (e *FieldError) Error() string {
	where := e.Path
	if where == "" {
		where = "the file"
	}
	if e.Line > 0 {
		where += fmt.Sprintf(" (line %d)", e.Line)
	}
	return where + ": " + e.Msg
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// checkNode walks the parsed file beside the type it will decode into and
// reports the first unknown key or mistyped value in the user's words. It
// is what makes the file strict: keys are the types' yaml tags, so a field
// added to a config type is known here without more code.
func checkNode(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return checkNode(n.Content[0], t, path)
	}
	if isNull(n) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // null leaves the default; a custom type checks itself
	}
	if t == durationType {
		return checkDuration(n, path)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkNode(n, t.Elem(), path)
	case reflect.Struct:
		return checkStruct(n, t, path)
	case reflect.Slice:
		return checkSlice(n, t, path)
	case reflect.Map:
		return checkMap(n, t, path)
	case reflect.Interface:
		return nil
	}
	return checkScalar(n, t, path)
}

func checkStruct(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.MappingNode {
		return &FieldError{Path: path, Line: n.Line, Msg: "want keys and values (key: value), got " + describe(n)}
	}
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" { // <<: *defaults merges another mapping's keys here
			if err := checkMerge(v, t, path); err != nil {
				return err
			}
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			return unknownKey(k, path, fields)
		}
		if err := checkNode(v, ft, join(path, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

// checkMerge checks the mapping (or list of mappings) a merge key names
// as keys of t.
func checkMerge(v *yaml.Node, t reflect.Type, path string) error {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, c := range v.Content {
			if err := checkMerge(c, t, path); err != nil {
				return err
			}
		}
		return nil
	}
	return checkStruct(v, t, path)
}

func checkSlice(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.SequenceNode {
		example := "[a, b]"
		if t.Elem().Kind() == reflect.Struct {
			example = "items each starting with \"- \""
		}
		return &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf("want a list (%s), got %s", example, describe(n))}
	}
	for i, c := range n.Content {
		if err := checkNode(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

func checkMap(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.MappingNode {
		return &FieldError{Path: path, Line: n.Line, Msg: "want keys and values (key: value), got " + describe(n)}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if err := checkNode(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
			return err
		}
	}
	return nil
}

func checkScalar(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Path: path, Line: n.Line, Msg: "want a single value, got " + describe(n)}
	}
	tag := n.ShortTag()
	var want string
	switch t.Kind() {
	case reflect.Bool:
		if tag != "!!bool" && !(n.Style == 0 && slices.Contains(yaml11Bools, n.Value)) {
			want = "true or false"
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if tag != "!!int" {
			want = "a whole number"
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if tag != "!!int" || strings.HasPrefix(n.Value, "-") {
			want = "a whole number, 0 or more"
		}
	case reflect.Float32, reflect.Float64:
		if tag != "!!int" && tag != "!!float" {
			want = "a number"
		}
	}
	if want != "" {
		return &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf("want %s, got %q", want, n.Value)}
	}
	return nil
}

// yaml11Bools are the YAML 1.1 spellings yaml.v3 still decodes into a bool field.
var yaml11Bools = []string{"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF"}

// checkDuration requires a Go duration with its unit: a bare number is the
// common mistake (seconds? milliseconds?), so it is named as such.
func checkDuration(n *yaml.Node, path string) error {
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Path: path, Line: n.Line, Msg: "want a duration such as 30s, 5m or 1h, got " + describe(n)}
	}
	if n.Value == "0" {
		return nil
	}
	if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
		return &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf(
			"%s is a number without a unit; a duration needs one, such as %ss, %sm or %sms", n.Value, n.Value, n.Value, n.Value)}
	}
	if _, err := time.ParseDuration(n.Value); err != nil {
		return &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf(
			"%q is not a duration; write a number with a unit (ms, s, m, h), such as 30s, 5m or 1h30m", n.Value)}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe says what a node is, in YAML's words.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "keys and values"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlFields maps each yaml key of struct t (and of its inlined structs) to its type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
			continue
		case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct:
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// unknownKey names the key, where it is, and the nearest known keys.
func unknownKey(k *yaml.Node, path string, fields map[string]reflect.Type) error {
	known := make([]string, 0, len(fields))
	for name := range fields {
		known = append(known, name)
	}
	slices.Sort(known)
	msg := fmt.Sprintf("unknown key %q", k.Value)
	if near := nearest(k.Value, known); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, " or ") + "?"
	} else if homes := keyHomes(reflect.TypeFor[Config](), "", k.Value); len(homes) > 0 {
		msg += "; it belongs under " + strings.Join(homes, " or ")
	} else {
		msg += "; known keys here: " + strings.Join(known, ", ")
	}
	return &FieldError{Path: join(path, k.Value), Line: k.Line, Msg: msg}
}

// keyHomes lists where key is known in the file, as YAML paths of its
// parent ("issuers[]"), for a key written at the wrong level.
func keyHomes(t reflect.Type, path, key string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		if t.Kind() == reflect.Slice {
			path += "[]"
		} else if t.Kind() == reflect.Map {
			return nil // a map's keys are the user's own
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationType {
		return nil
	}
	fields := yamlFields(t)
	var homes []string
	if _, ok := fields[key]; ok && path != "" {
		homes = append(homes, path)
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		homes = append(homes, keyHomes(fields[name], join(path, name), key)...)
	}
	return homes
}

// nearest returns the known keys closest to key: within an edit distance
// of a third of its length (at least 2), or that contain it or it contains.
func nearest(key string, known []string) []string {
	lower := strings.ToLower(key)
	limit := max(2, len(key)/3)
	best, bestDist := []string(nil), limit+1
	for _, k := range known {
		d := editDistance(lower, k)
		if d > limit && len(lower) >= 4 && (strings.Contains(k, lower) || strings.Contains(lower, k)) {
			d = limit
		}
		switch {
		case d < bestDist:
			best, bestDist = []string{k}, d
		case d == bestDist:
			best = append(best, k)
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlTypeWords are yaml's tags in the file's words, for the rare decode
// error that checkNode did not catch first.
var yamlTypeWords = strings.NewReplacer("!!str", "text", "!!int", "a number", "!!float", "a number",
	"!!bool", "true/false", "!!map", "keys and values", "!!seq", "a list", "!!null", "nothing", "!!binary", "binary")

var goTypeClause = regexp.MustCompile(` into [A-Za-z0-9_.*\[\]]+`)

// plainYAMLError turns a yaml error into one line without Go types or yaml tags.
func plainYAMLError(err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = goTypeClause.ReplaceAllString(msg, " here")
	return fmt.Errorf("%s", yamlTypeWords.Replace(msg))
}
