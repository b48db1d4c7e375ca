package pdf

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
)

// fpdf compresses every page stream with a zlib writer of its own, and a
// compress/flate writer allocates about 850 KB before it writes a byte: two
// thirds of what a 10-page report allocated. So pages are written
// uncompressed and deflatePages compresses them afterwards with writers kept
// on a free list (not a sync.Pool, which the garbage collector empties). The
// fonts' streams fpdf always compresses itself.

// zlibWriters holds idle writers; more than its capacity are dropped.
type zlibWriters chan *zlib.Writer

func (p zlibWriters) get() *zlib.Writer {
	select {
	case w := <-p:
		return w
	default:
		w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed) // the level is valid
		return w
	}
}

func (p zlibWriters) put(w *zlib.Writer) {
	select {
	case p <- w:
	default:
	}
}

// deflatePages returns doc, a PDF as fpdf writes it without compression, with
// every stream whose dictionary is only its /Length compressed with
// /FlateDecode and the cross-reference table rewritten for the new offsets.
// It fails when doc is not laid out the way fpdf writes it.
func deflatePages(doc []byte, writers zlibWriters) ([]byte, error) {
	xrefAt, err := startXref(doc)
	if err != nil {
		return nil, err
	}
	offsets, trailer, err := parseXref(doc[xrefAt:])
	if err != nil {
		return nil, err
	}
	order := make([]int, 0, len(offsets))
	for n := 1; n < len(offsets); n++ {
		order = append(order, n)
	}
	slices.SortFunc(order, func(a, b int) int { return offsets[a] - offsets[b] })
	if len(order) == 0 || offsets[order[0]] <= 0 || offsets[order[len(order)-1]] >= xrefAt {
		return nil, errors.New("deflate pages: object offsets out of range")
	}

	out := bytes.NewBuffer(make([]byte, 0, len(doc)/3))
	out.Write(doc[:offsets[order[0]]])
	newOffsets := make([]int, len(offsets))
	zw := writers.get()
	defer writers.put(zw)
	for i, n := range order {
		end := xrefAt
		if i+1 < len(order) {
			end = offsets[order[i+1]]
		}
		newOffsets[n] = out.Len()
		if err := writeObject(out, doc[offsets[n]:end], n, zw); err != nil {
			return nil, err
		}
	}
	xref := out.Len()
	out.WriteString("xref\n0 " + strconv.Itoa(len(offsets)) + "\n0000000000 65535 f \n")
	for n := 1; n < len(offsets); n++ {
		fmt.Fprintf(out, "%010d 00000 n \n", newOffsets[n])
	}
	out.Write(trailer)
	out.WriteString("startxref\n" + strconv.Itoa(xref) + "\n%%EOF\n")
	return out.Bytes(), nil
}

// writeObject copies object n (obj, "n 0 obj" up to the next object) to out,
// compressing its stream when its dictionary holds only /Length.
func writeObject(out *bytes.Buffer, obj []byte, n int, zw *zlib.Writer) error {
	head := strconv.Itoa(n) + " 0 obj\n<</Length "
	rest, ok := bytes.CutPrefix(obj, []byte(head))
	if !ok {
		out.Write(obj)
		return nil
	}
	digits, rest, ok := bytes.Cut(rest, []byte(">>\nstream\n"))
	length, err := strconv.Atoi(string(digits))
	if !ok || err != nil { // a dictionary with more than /Length: copied as it is
		out.Write(obj)
		return nil
	}
	if length < 0 || length > len(rest) {
		return fmt.Errorf("deflate pages: object %d: /Length %d out of range", n, length)
	}
	data, tail := rest[:length], rest[length:]
	if !bytes.HasPrefix(tail, []byte("\nendstream\n")) {
		return fmt.Errorf("deflate pages: object %d: stream does not end after /Length", n)
	}
	var z bytes.Buffer
	z.Grow(length/3 + 64)
	zw.Reset(&z)
	if _, err := zw.Write(data); err != nil {
		return fmt.Errorf("deflate pages: object %d: %w", n, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("deflate pages: object %d: %w", n, err)
	}
	out.WriteString(strconv.Itoa(n) + " 0 obj\n<</Filter /FlateDecode /Length " + strconv.Itoa(z.Len()) + ">>\nstream\n")
	out.Write(z.Bytes())
	out.Write(tail)
	return nil
}

// startXref returns the offset the last startxref names.
func startXref(doc []byte) (int, error) {
	i := bytes.LastIndex(doc, []byte("startxref\n"))
	if i < 0 {
		return 0, errors.New("deflate pages: no startxref")
	}
	line, _, _ := bytes.Cut(doc[i+len("startxref\n"):], []byte("\n"))
	at, err := strconv.Atoi(string(line))
	if err != nil || at <= 0 || at >= i {
		return 0, errors.New("deflate pages: bad startxref")
	}
	return at, nil
}

// parseXref reads fpdf's single-section cross-reference table at the start
// of b and returns the offsets by object number and the trailer (from
// "trailer" up to "startxref").
func parseXref(b []byte) (offsets []int, trailer []byte, err error) {
	rest, ok := bytes.CutPrefix(b, []byte("xref\n0 "))
	if !ok {
		return nil, nil, errors.New("deflate pages: no cross-reference table")
	}
	line, rest, _ := bytes.Cut(rest, []byte("\n"))
	count, err := strconv.Atoi(string(line))
	if err != nil || count < 1 || len(rest) < 20*count {
		return nil, nil, errors.New("deflate pages: bad cross-reference table size")
	}
	offsets = make([]int, count)
	for n := 1; n < count; n++ {
		entry := rest[20*n : 20*n+20]
		if entry[17] != 'n' {
			return nil, nil, fmt.Errorf("deflate pages: object %d is not in use", n)
		}
		if offsets[n], err = strconv.Atoi(string(entry[:10])); err != nil {
			return nil, nil, fmt.Errorf("deflate pages: object %d offset: %w", n, err)
		}
	}
	trailer, _, ok = bytes.Cut(rest[20*count:], []byte("startxref\n"))
	if !ok || !bytes.HasPrefix(trailer, []byte("trailer\n")) {
		return nil, nil, errors.New("deflate pages: no trailer")
	}
	return offsets, trailer, nil
}

// newZlibWriters returns a free list with room for one writer per CPU.
func newZlibWriters() zlibWriters { return make(zlibWriters, runtime.GOMAXPROCS(0)) }
