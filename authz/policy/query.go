package policy

import "fmt"

// CheckQuery reports, as an error naming the query, when no rule or data
// document of the loaded policy defines policy.query: every Check would be
// denied with 500. tokenwise validate refuses such a configuration.
func (e *Engine) CheckQuery() error {
	p := e.current.Load()
	if p == nil || !p.queryUndefined {
		return nil
	}
	return fmt.Errorf("policy.query %s: no rule or data in %s defines it; every Check would fail (check the package name and rule name)",
		e.cfg.Query, joinPaths(e.cfg.Paths))
}

func joinPaths(paths []string) string {
	if len(paths) == 1 {
		return paths[0]
	}
	return fmt.Sprint(paths)
}
