// Package schemas embeds afteraction's event contract: a JSON Schema (draft
// 2020-12) for every event type at events/<ce-type>.json, and examples at
// events/examples/<ce-type>[.<variant>].example.json. The schemas describe the
// data alone; the CloudEvents attributes, including the distributed-tracing
// extension (ce-traceparent, ce-tracestate), travel as NATS headers (see
// docs/ARCHITECTURE.md, "Event contract").
package schemas

import (
	"embed"
	"io/fs"
)

//go:embed events
var files embed.FS

// FS returns the embedded schema files, rooted so that
// "events/incident.closed.v1.json" and "events/examples/..." are valid paths.
func FS() fs.FS {
	return files
}
