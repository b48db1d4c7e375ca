// Package custody is the chain of custody of a report: an append-only log per
// report of who rendered, published, downloaded, verified and delivered each
// version, every entry carrying the SHA-256 of the one before it, so that
// changing, removing or reordering any entry breaks the chain at that entry.
//
// An entry's hash is the SHA-256 of the JSON array
//
//	["afteraction-custody-v1", report_id, seq, at, action, version, actor, detail, pdf_sha256, prev_sha256]
//
// (Go's encoding/json, no HTML escaping, `at` in RFC 3339 with nanoseconds,
// UTC), lower-case hex. The first entry's prev_sha256 is 64 zeros. Anyone can
// recompute the chain from an export with this rule alone; Verify does it.
package custody

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Actions recorded in a custody log.
const (
	Rendered   = "rendered"
	Published  = "published"
	Downloaded = "downloaded"
	Verified   = "verified"
	Delivered  = "delivered"
	// HoldPlaced and HoldLifted record a legal hold on the incident's evidence;
	// EvidenceExpired the end of its retention (the report itself is kept).
	HoldPlaced      = "hold_placed"
	HoldLifted      = "hold_lifted"
	EvidenceExpired = "evidence_expired"
)

// Genesis is the prev_sha256 of a report's first entry.
var Genesis = strings.Repeat("0", 64)

// Entry is one link of the chain.
type Entry struct {
	ReportID string    `json:"report_id"`
	Seq      int64     `json:"seq"`
	At       time.Time `json:"at"`
	Action   string    `json:"action"`
	// Version is the report version concerned (0: none).
	Version int `json:"version"`
	// Actor says who: a service, or an API caller's role, token fingerprint and address.
	Actor     string `json:"actor"`
	Detail    string `json:"detail"`
	PDFSHA256 string `json:"pdf_sha256"`
	Prev      string `json:"prev_sha256"`
	Hash      string `json:"entry_sha256"`
}

// Next returns the entry that follows prev (nil for the first) with its
// sequence number, previous hash and own hash filled in, and its time in UTC
// truncated to microseconds (the precision it is stored with).
func Next(prev *Entry, e Entry) Entry {
	e.Seq, e.Prev = 1, Genesis
	if prev != nil {
		e.Seq, e.Prev = prev.Seq+1, prev.Hash
	}
	e.At = e.At.UTC().Truncate(time.Microsecond) // what Postgres keeps
	e.Hash = Hash(e)
	return e
}

// Hash returns the SHA-256 of e's canonical form (every field but Hash).
func Hash(e Entry) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode([]any{"afteraction-custody-v1", e.ReportID, e.Seq, e.At.UTC().Format(time.RFC3339Nano), e.Action,
		e.Version, e.Actor, e.Detail, e.PDFSHA256, e.Prev}) // strings and numbers always encode
	sum := sha256.Sum256(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return hex.EncodeToString(sum[:])
}

// Check is the outcome of Verify.
type Check struct {
	Valid bool `json:"valid"`
	// BrokenAt is the sequence number of the first entry that does not
	// follow from the ones before it (0 when Valid).
	BrokenAt int64  `json:"broken_at,omitempty"`
	Reason   string `json:"reason"`
	Entries  int    `json:"entries"`
}

// Verify recomputes the chain of entries, which must be one report's log in
// sequence order, and says where it first breaks: a sequence gap, an entry of
// another report, a previous hash that is not the hash of the entry before,
// or an entry whose content does not match its own hash.
func Verify(entries []Entry) Check {
	c := Check{Entries: len(entries)}
	prev := Genesis
	for i, e := range entries {
		broken := func(format string, args ...any) Check {
			c.BrokenAt, c.Reason = e.Seq, fmt.Sprintf("entry %d: ", e.Seq)+fmt.Sprintf(format, args...)
			return c
		}
		switch {
		case e.Seq != int64(i+1):
			return broken("sequence number %d where %d was expected: an entry was removed or inserted", e.Seq, i+1)
		case i > 0 && e.ReportID != entries[0].ReportID:
			return broken("belongs to report %s, not %s", e.ReportID, entries[0].ReportID)
		case e.Prev != prev:
			return broken("prev_sha256 %s is not the hash of the entry before (%s): an earlier entry was changed or removed", e.Prev, prev)
		case Hash(e) != e.Hash:
			return broken("its content does not match its entry_sha256: this entry was changed")
		}
		prev = e.Hash
	}
	c.Valid = true
	c.Reason = fmt.Sprintf("%d entries, each following from the one before; last entry_sha256 %s", len(entries), prev)
	return c
}
