package config

import (
	"maps"
	"slices"
)

// Inspection is what a service's LoadConfig makes of one environment: the
// variables it knows there, which of them it cannot do without, and the ones
// it ignores. Deployment files (docker-compose.yml, deploy/k8s) are checked
// with it, so that a misspelt or forgotten variable fails a test instead of a
// deployment.
type Inspection struct {
	// Read is every variable LoadConfig read, sorted: what it knows under
	// this environment (a variable read only when another is set counts when
	// that one is set).
	Read []string
	// Unknown lists the variables of the environment LoadConfig never read,
	// sorted: misspelt, or meant for another service.
	Unknown []string
	// Required lists the variables of the environment without which
	// LoadConfig fails, sorted; the others it read are optional.
	Required []string
	// Err is LoadConfig's error for the environment as given: a required
	// variable missing, or a value it refuses. It names the variable.
	Err error
}

// Inspect runs load with the variables of env alone, as if nothing else were
// set, recording every variable it reads; then once more without each
// variable of env, to tell the required from the optional. load must read its
// configuration only through the getenv it is given and have no other effect,
// as every service's LoadConfig does.
func Inspect[C any](load func(getenv func(string) string) (C, error), env map[string]string) Inspection {
	read := map[string]bool{}
	_, err := load(func(key string) string {
		read[key] = true
		return env[key]
	})
	in := Inspection{Read: slices.Sorted(maps.Keys(read)), Err: err}
	for _, key := range slices.Sorted(maps.Keys(env)) {
		if !read[key] {
			in.Unknown = append(in.Unknown, key)
			continue
		}
		if _, err := load(func(k string) string {
			if k == key {
				return ""
			}
			return env[k]
		}); err != nil {
			in.Required = append(in.Required, key)
		}
	}
	return in
}
