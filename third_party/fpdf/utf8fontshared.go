// Copyright ©2026 The afteraction authors. All rights reserved.
// Use of this source code is governed by a MIT-style
// license that can be found in the LICENSE file.

package fpdf

import (
	"errors"
	"sync"
)

// UTF8Font is a TrueType font with UTF-8 symbols parsed once by
// ParseUTF8Font, to be added to any number of documents with
// AddUTF8FontParsed instead of parsing it again for each one (afteraction
// patch; see README.md). It is not modified after ParseUTF8Font returns and is
// safe for concurrent use by documents in different goroutines.
type UTF8Font struct {
	file *utf8FontFile

	mu  sync.Mutex
	ids map[string]string // font id by font key, as generateFontID computes it
}

// ParseUTF8Font parses a TrueType font (utf8Bytes, which must not be changed
// afterwards) and reads the tables that subsetting it needs. It fails when
// the bytes are not a TrueType font or the font has no Unicode cmap.
func ParseUTF8Font(utf8Bytes []byte) (*UTF8Font, error) {
	file := newUTF8Font(&fileReader{readerPosition: 0, array: utf8Bytes})
	if err := file.parseFile(); err != nil {
		return nil, err
	}
	if !file.prepareCut() {
		return nil, errors.New("fpdf: font has no Unicode cmap (format 4)")
	}
	return &UTF8Font{file: file, ids: make(map[string]string)}, nil
}

// AddUTF8FontParsed makes font available in the document under family and
// style, like AddUTF8FontFromBytes with the bytes font was parsed from, and
// with the same output.
func (f *Fpdf) AddUTF8FontParsed(familyStr, styleStr string, font *UTF8Font) {
	if f.err != nil {
		return
	}
	fontkey := getFontKey(fontFamilyEscape(familyStr), styleStr)
	if _, ok := f.fonts[fontkey]; ok {
		return
	}
	def := f.utf8FontDef(fontkey, font.file)
	def.i = font.id(def)
	f.fonts[fontkey] = def
}

// id returns generateFontID(def), computed once per font key: it marshals
// the 64 K character widths, which cost more than the rest of adding a font.
func (font *UTF8Font) id(def fontDefType) string {
	font.mu.Lock()
	defer font.mu.Unlock()
	id, ok := font.ids[def.Name]
	if !ok {
		id, _ = generateFontID(def) // marshalling a fontDefType does not fail
		font.ids[def.Name] = id
	}
	return id
}

// utf8FontDef is the definition of the parsed utf8File under fontkey in f,
// with a set of used runes of its own.
func (f *Fpdf) utf8FontDef(fontkey string, utf8File *utf8FontFile) fontDefType {
	desc := FontDescType{
		Ascent:       int(utf8File.Ascent),
		Descent:      int(utf8File.Descent),
		CapHeight:    utf8File.CapHeight,
		Flags:        utf8File.Flags,
		FontBBox:     utf8File.Bbox,
		ItalicAngle:  utf8File.ItalicAngle,
		StemV:        utf8File.StemV,
		MissingWidth: round(utf8File.DefaultWidth),
	}

	var sbarr map[int]int
	if f.aliasNbPagesStr == "" {
		sbarr = makeSubsetRange(57)
	} else {
		sbarr = makeSubsetRange(32)
	}
	return fontDefType{
		Tp:        "UTF8",
		Name:      fontkey,
		Desc:      desc,
		Up:        int(round(utf8File.UnderlinePosition)),
		Ut:        round(utf8File.UnderlineThickness),
		Cw:        utf8File.CharWidths,
		utf8File:  utf8File,
		usedRunes: sbarr,
	}
}
