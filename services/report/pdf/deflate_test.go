package pdf

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestPagesAreDeflated(t *testing.T) {
	t.Parallel()
	out, err := renderer(t).Render(exampleInput(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(out.PDF, []byte("<</Filter /FlateDecode /Length ")); n < out.Pages {
		t.Errorf("%d streams deflated, want at least one per page (%d)", n, out.Pages)
	}
	if loc := regexp.MustCompile(` 0 obj\n<</Length \d+>>\nstream`).FindIndex(out.PDF); loc != nil {
		t.Errorf("an uncompressed stream is left at byte %d", loc[0])
	}
	qpdfCheck(t, out.PDF)
}

func TestDeflatePagesRefusesWhatFpdfDoesNotWrite(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"no startxref":    "%PDF-1.4\n1 0 obj\n<<>>\nendobj\n",
		"no xref table":   "%PDF-1.4\n1 0 obj\n<<>>\nendobj\nstartxref\n9\n%%EOF\n",
		"length too long": "%PDF-1.4\n1 0 obj\n<</Length 999>>\nstream\nabc\nendstream\nendobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer\n<</Size 2>>\nstartxref\n57\n%%EOF\n",
	} {
		if _, err := deflatePages([]byte(doc), newZlibWriters()); err == nil || !strings.Contains(err.Error(), "deflate pages") {
			t.Errorf("%s: err = %v, want a deflate pages error", name, err)
		}
	}
}
