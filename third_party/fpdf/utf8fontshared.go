// Copyright ©2026 The afteraction authors. All rights reserved.
// Use of this source code is governed by a MIT-style
// license that can be found in the LICENSE file.

package fpdf

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"
)

// UTF8Font is a TrueType font with UTF-8 symbols parsed once by
// ParseUTF8Font, to be added to any number of documents with
// AddUTF8FontParsed instead of parsing it again for each one (afteraction
// patch; see README.md). It is not modified after ParseUTF8Font returns and is
// safe for concurrent use by documents in different goroutines.
type UTF8Font struct {
	file    *utf8FontFile
	subsets *utf8Subsets

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
	return &UTF8Font{file: file, subsets: &utf8Subsets{byKey: make(map[string]*utf8Subset)},
		ids: make(map[string]string)}, nil
}

// AddUTF8FontParsed makes font available in the document under family and
// style, like AddUTF8FontFromBytes with the bytes font was parsed from, and
// with the same output.
func (f *Fpdf) AddUTF8FontParsed(familyStr, styleStr string, font *UTF8Font) {
	if f.err != nil {
		return
	}
	if font == nil {
		f.SetErrorf("AddUTF8FontParsed: no font for family %q style %q", familyStr, styleStr)
		return
	}
	fontkey := getFontKey(fontFamilyEscape(familyStr), styleStr)
	if _, ok := f.fonts[fontkey]; ok {
		return
	}
	def := f.utf8FontDef(fontkey, font.file)
	def.i = font.id(def)
	def.subsets = font.subsets
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

// utf8Subset is what putfonts writes for one subset of a UTF-8 font: it
// depends only on the font and the runes the document used.
type utf8Subset struct {
	fontFile    []byte // the font program, compressed
	length1     int    // its length uncompressed
	cidToGidMap []byte // compressed
	widths      string // the /W array of the CIDFont
}

// maxUTF8Subsets bounds the subsets kept per font: each is about the
// compressed size of its glyphs (~15 KB for a report in a Latin script).
const maxUTF8Subsets = 32

// utf8Subsets keeps the most recently cut subsets of one shared font by used
// rune set, so that documents using the same runes do not cut and compress
// the same subset again. The oldest subset is dropped first.
type utf8Subsets struct {
	mu    sync.Mutex
	byKey map[string]*utf8Subset
	order []string // keys, oldest first
}

func (c *utf8Subsets) get(key string) *utf8Subset {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKey[key]
}

func (c *utf8Subsets) put(key string, sub *utf8Subset) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok {
		return
	}
	if len(c.order) == maxUTF8Subsets {
		delete(c.byKey, c.order[0])
		c.order = slices.Delete(c.order, 0, 1)
	}
	c.byKey[key] = sub
	c.order = append(c.order, key)
}

// utf8Subset returns the subset of font for the runes it used: from the
// cache of a shared font (AddUTF8FontParsed), else cut now.
func (f *Fpdf) utf8Subset(font *fontDefType) *utf8Subset {
	if font.subsets == nil {
		return f.cutUTF8Subset(font)
	}
	key := runeSetKey(font.usedRunes)
	if sub := font.subsets.get(key); sub != nil {
		return sub
	}
	sub := f.cutUTF8Subset(font)
	font.subsets.put(key, sub)
	return sub
}

// cutUTF8Subset cuts and compresses the subset of font for the runes it
// used, as putfonts did before the cache.
func (f *Fpdf) cutUTF8Subset(font *fontDefType) *utf8Subset {
	cut := font.utf8File.cutter() // the font may be shared
	stream := cut.GenerateCutFont(font.usedRunes)
	codeSymbols := cut.CodeSymbolDictionary
	delete(codeSymbols, 0)
	cidToGidMap := make([]byte, 256*256*2)
	for cc, glyph := range codeSymbols {
		cidToGidMap[cc*2] = byte(glyph >> 8)
		cidToGidMap[cc*2+1] = byte(glyph & 0xFF)
	}
	return &utf8Subset{
		fontFile:    compressed(stream),
		length1:     len(stream),
		cidToGidMap: compressed(cidToGidMap),
		widths:      f.generateCIDFontMap(font, cut.LastRune),
	}
}

// compressed returns data compressed as putfonts compresses streams.
func compressed(data []byte) []byte {
	mem := xmem.compress(data)
	defer mem.release()
	return mem.copy()
}

// runeSetKey identifies a set of used runes: the subset depends on the keys
// and on which values are zero (the initial range is marked with 0).
func runeSetKey(usedRunes map[int]int) string {
	keys := make([]int, 0, len(usedRunes))
	for k := range usedRunes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, 3*len(keys))
	for _, k := range keys {
		b = binary.AppendVarint(b, int64(k))
		b = binary.AppendVarint(b, int64(usedRunes[k]))
	}
	return string(b)
}
