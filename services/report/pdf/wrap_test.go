package pdf

import (
	"slices"
	"strings"
	"testing"
)

func TestWrapBreaksAtWordsAndAddressParts(t *testing.T) {
	t.Parallel()
	d := renderer(t).newDoc(exampleInput(t))
	d.f.AddPage()
	d.font("", smallSize)
	tests := []struct {
		name  string
		in    string
		width float64
		want  []string
	}{
		{"words", "Confirmed with the bank that the fraudulent payment change was stopped", 50,
			[]string{"Confirmed with the bank that the", "fraudulent payment change was", "stopped"}},
		{"hyphenated name", "Margarethe Müller-Lüdenscheidt", 30, []string{"Margarethe", "Müller-", "Lüdenscheidt"}},
		{"e-mail", "kemal.yildiz@nordlicht-logistik.example", 30, []string{"kemal.yildiz", "@nordlicht-logistik.", "example"}},
		{"newlines kept", "one\n\ntwo", 50, []string{"one", "", "two"}},
		{"empty", "", 50, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := d.wrap(tt.in, tt.width)
			if !slices.Equal(got, tt.want) {
				t.Errorf("wrap(%q, %v) = %q, want %q", tt.in, tt.width, got, tt.want)
			}
		})
	}

	// A piece with no break point still breaks, and nothing is lost.
	hash := strings.Repeat("9f2c4e1b", 8)
	got := d.wrap(hash, 20)
	if len(got) < 2 || strings.Join(got, "") != hash {
		t.Errorf("wrap(hash) = %q", got)
	}
	for _, l := range got {
		if w := d.f.GetStringWidth(l); w > 20-2*d.f.GetCellMargin() {
			t.Errorf("line %q is %.1f mm wide", l, w)
		}
	}
}
