package main

import (
	"os"
	"regexp"
	"testing"
)

// TestDemoAnswersAreDistinct: two questions must never show the same
// paragraph, and every free-text question of the questionnaire the demo
// answers has an answer of its own from each persona.
func TestDemoAnswersAreDistinct(t *testing.T) {
	t.Parallel()
	sql, err := os.ReadFile("../../services/review/postgres/migrations/0007_questionnaire_2026_12_1.sql")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"id": "([a-z_.]+)", "topic": "[a-z_]+", "kind": "(?:text|action_items)"`) // the questionnaire the review service opens now
	ids := re.FindAllSubmatch(sql, -1)
	if len(ids) < 10 {
		t.Fatalf("found %d free-text questions in the questionnaire, want the 2026-12.1 set", len(ids))
	}
	seen := map[string]string{}
	for i, p := range personas {
		for _, m := range ids {
			id := string(m[1])
			text := p[id]
			if text == "" {
				t.Errorf("persona %d does not answer %s", i, id)
				continue
			}
			if other, dup := seen[text]; dup {
				t.Errorf("persona %d answers %s with the same text as %s", i, id, other)
			}
			seen[text] = id
		}
	}
}
