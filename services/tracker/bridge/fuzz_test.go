package bridge

import (
	"errors"
	"testing"

	"github.com/afteraction/afteraction/pkg/events"
)

// The decoders take bodies from the internet (after the signature check, but
// a signed body can still be anything the sender's bug makes of it): they
// must return an Inbound or an error wrapping ErrPayload, never panic, and
// never return a status outside the enum.

func checkDecoded(t *testing.T, in Inbound, err error) {
	if err != nil {
		if !errors.Is(err, ErrPayload) {
			t.Fatalf("error %v does not wrap ErrPayload", err)
		}
		return
	}
	if in.Ignored == "" && !in.Status.Valid() {
		t.Fatalf("decoded status %q is not a status", in.Status)
	}
}

func FuzzDecodeGitHub(f *testing.F) {
	for _, name := range []string{"github_issues_closed.json", "github_issues_reopened.json", "github_issues_labeled.json"} {
		f.Add("issues", fixture(f, name))
	}
	f.Add("issues", []byte(`{"action":"closed","issue":{"number":1}}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		in, err := DecodeGitHub(event, "delivery", body)
		checkDecoded(t, in, err)
	})
}

func FuzzDecodeJira(f *testing.F) {
	for _, name := range []string{"jira_issue_updated.json", "jira_issue_updated_indeterminate.json", "jira_issue_updated_summary.json"} {
		f.Add(fixture(f, name))
	}
	names := map[string]events.Status{"Won't Fix": events.StatusWontDo}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := DecodeJira(names, body)
		checkDecoded(t, in, err)
	})
}

func FuzzDecodeGitLab(f *testing.F) {
	for _, name := range []string{"gitlab_issue_close.json", "gitlab_issue_reopen.json", "gitlab_issue_update.json"} {
		f.Add("Issue Hook", fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		in, err := DecodeGitLab(event, "uuid", body)
		checkDecoded(t, in, err)
	})
}

func FuzzDecodeWebhookStatus(f *testing.F) {
	f.Add("d-1", []byte(`{"action_id":"7d7bd1f6-1c53-5b7e-9a6f-2d1f9d3c8e01","status":"done","updated_at":"2026-05-03T06:00:00Z"}`))
	f.Add("", []byte(`{}`))
	f.Fuzz(func(t *testing.T, delivery string, body []byte) {
		in, err := DecodeWebhookStatus(delivery, body)
		checkDecoded(t, in, err)
	})
}
