package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/loader"
)

// CheckQuery reports, as an error naming the query, when no rule or data
// document of the loaded policy defines policy.query: every Check would be
// denied with 500. tokenwise validate refuses such a configuration.
func (e *Engine) CheckQuery() error {
	p := e.current.Load()
	if p == nil || !p.queryUndefined {
		return nil
	}
	msg := fmt.Sprintf("policy.query %s: no rule or data in %s defines it; every Check would fail", e.cfg.Query, strings.Join(e.cfg.Paths, ", "))
	if len(p.rules) > 0 {
		shown := p.rules[:min(len(p.rules), 8)]
		msg += " (the policies define " + strings.Join(shown, ", ")
		if len(p.rules) > len(shown) {
			msg += ", ..."
		}
		msg += ")"
	}
	return fmt.Errorf("%s", msg)
}

// ruleRefs lists the rules the modules define, as data references, sorted.
func ruleRefs(result *loader.Result) []string {
	var refs []string
	for _, m := range result.Modules {
		for _, r := range m.Parsed.Rules {
			ref := m.Parsed.Package.Path.Extend(r.Head.Ref().GroundPrefix()).String()
			if !slices.Contains(refs, ref) {
				refs = append(refs, ref)
			}
		}
	}
	slices.Sort(refs)
	return refs
}
