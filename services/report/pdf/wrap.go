package pdf

import (
	"strings"
	"unicode/utf8"
)

// wrap splits s into lines that fit a cell width wide at the current font,
// the way a reader expects: at spaces; a word too long for a line breaks
// before '@' or after '.', '-', '/', '_' or ':' (e-mail addresses, host
// names, URLs, hyphenated names); only a piece with none of those breaks
// mid-word. Newlines in s are kept. It never returns an empty slice.
func (d *doc) wrap(s string, width float64) []string {
	avail := width - 2*d.f.GetCellMargin()
	fits := func(t string) bool { return d.f.GetStringWidth(t) <= avail }
	var lines []string
	for para := range strings.SplitSeq(s, "\n") {
		line := ""
		for word := range strings.FieldsSeq(para) {
			if line != "" && fits(line+" "+word) {
				line += " " + word
				continue
			}
			if line != "" {
				lines = append(lines, line)
			}
			for !fits(word) {
				head, tail := breakWord(word, fits)
				lines = append(lines, head)
				word = tail
			}
			line = word
		}
		lines = append(lines, line)
	}
	return lines
}

// breakWord splits word, which does not fit, into the longest head that fits
// ending at a preferred break point, or, without one, the longest head that
// fits (at least one rune, so the loop in wrap always ends).
func breakWord(word string, fits func(string) bool) (head, tail string) {
	longest := 0 // byte length of the longest prefix that fits
	for i, r := range word {
		end := i + utf8.RuneLen(r)
		if !fits(word[:end]) {
			break
		}
		longest = end
	}
	if longest == 0 {
		_, size := utf8.DecodeRuneInString(word)
		return word[:size], word[size:]
	}
	for i := longest; i > 0; i-- {
		switch word[i-1] {
		case '.', '-', '/', '_', ':':
			if i < len(word) {
				return word[:i], word[i:]
			}
		}
		if i < longest && word[i] == '@' {
			return word[:i], word[i:]
		}
	}
	return word[:longest], word[longest:]
}
