package review

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/afteraction/afteraction/pkg/events"
)

// maxCompletedBytes bounds the JSON of a review.completed event. NATS refuses
// messages over 1 MiB and the outbox anything over pkg/postgres.MaxEventBytes;
// half a MiB leaves room for headers and keeps an incident of up to ~1 MiB and
// many long answers completable. Nothing is lost by shortening: the review
// keeps every answer (GET /v1/reviews/{id}) and intake the whole incident.
const maxCompletedBytes = 512 << 10

// shortenedMark ends every text boundCompleted shortened.
const shortenedMark = "… [shortened; full text in the review and the incident]"

// longText names the JSON fields of free text that boundCompleted may shorten;
// identifiers, e-mail addresses, URLs and enumerations are never touched, so the
// event still matches its schema.
var longText = map[string]bool{
	"summary": true, "detail": true, "description": true, "text": true, "attack_vector": true,
	"root_cause": true, "items": true, "notes": true, "value": true, "action": true,
}

// boundCompleted makes ev fit maxCompletedBytes: first it shortens the longest
// free texts of the incident, the answers and the outcome (halving a limit
// until the event fits, down to 64 characters each), then it keeps only the
// first entries of the incident's long lists (timeline, indicators, assets,
// ...; never the people). When it changed anything it adds a note saying so
// to the incident's notes, which every consumer shows. It returns whether it
// shortened anything, or an error when even that is not enough.
func boundCompleted(ev *events.ReviewCompleted) (bool, error) {
	fits := func() (bool, error) {
		b, err := json.Marshal(ev)
		return len(b) <= maxCompletedBytes, err
	}
	if ok, err := fits(); ok || err != nil {
		return false, err
	}
	for limit := 8192; limit >= 64; limit /= 2 {
		shortenTexts(reflect.ValueOf(ev).Elem(), "", limit)
		if ok, err := fits(); err != nil || ok {
			return true, notedShortened(ev, err)
		}
	}
	inc := reflect.ValueOf(&ev.Incident).Elem()
	for keep := 1000; keep >= 0; keep /= 2 {
		for i := range inc.NumField() {
			f := inc.Field(i)
			if f.Kind() == reflect.Slice && inc.Type().Field(i).Name != "People" && f.Len() > keep {
				f.Set(f.Slice(0, keep))
			}
		}
		if ok, err := fits(); err != nil || ok {
			return true, notedShortened(ev, err)
		}
		if keep == 0 {
			break
		}
	}
	return true, fmt.Errorf("review.completed of review %s: still over %d bytes after shortening", ev.ReviewID, maxCompletedBytes)
}

// notedShortened adds the note that the event was shortened to the incident's
// notes (at most 200 by the schema: the last one gives way).
func notedShortened(ev *events.ReviewCompleted, err error) error {
	if err != nil {
		return err
	}
	const note = "review.completed shortened to fit an event: long texts and lists end early; " +
		"the review API has every answer and intake the whole incident"
	if len(ev.Incident.Notes) >= 200 {
		ev.Incident.Notes = ev.Incident.Notes[:199]
	}
	ev.Incident.Notes = append(ev.Incident.Notes, note)
	return nil
}

// shortenTexts cuts every free-text string (see longText) below v to limit
// characters, walking structs, pointers and slices.
func shortenTexts(v reflect.Value, name string, limit int) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			shortenTexts(v.Elem(), name, limit)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			shortenTexts(v.Field(i), tag, limit)
		}
	case reflect.Slice:
		for i := range v.Len() {
			shortenTexts(v.Index(i), name, limit)
		}
	case reflect.String:
		if longText[name] && v.CanSet() {
			if r := []rune(v.String()); len(r) > limit {
				v.SetString(string(r[:limit-len([]rune(shortenedMark))]) + shortenedMark)
			}
		}
	}
}
