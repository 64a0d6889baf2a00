package gofpdf

// Tests of aptflow's patches that need the package's unexported functions.

import (
	"bytes"
	"compress/zlib"
	"math/rand"
	"sync"
	"testing"
)

// TestGenerateChecksumPadsACopy (patch 4): the checksum of a table whose
// length is not a multiple of four is that of the table padded with zeros,
// and the padding goes to a copy: the bytes after the table, in the font
// file the table is a slice of, are left alone. Upstream appended to the
// slice and wrote zeros over them (usually over zeros, the file's own
// padding, hence a data race rather than a visible change).
func TestGenerateChecksumPadsACopy(t *testing.T) {
	t.Parallel()
	utf := &utf8FontFile{}
	for n := 1; n <= 8; n++ {
		file := bytes.Repeat([]byte{0xAA}, 16)
		for i := 0; i < n; i++ {
			file[i] = byte(i + 1)
		}
		padded := make([]byte, (n+3)/4*4)
		copy(padded, file[:n])

		got := utf.generateChecksum(file[:n])
		if want := utf.generateChecksum(padded); got[0] != want[0] || got[1] != want[1] {
			t.Errorf("%d bytes: checksum %v, want that of the zero-padded table %v", n, got, want)
		}
		if !bytes.Equal(file[n:], bytes.Repeat([]byte{0xAA}, 16-n)) {
			t.Errorf("%d bytes: the bytes after the table became % x", n, file[n:])
		}
	}
}

// TestSliceCompress (patch 3): a pooled zlib writer, reset, writes what a
// new writer of the same level writes, whatever it compressed before, also
// when used from several goroutines (for -race).
func TestSliceCompress(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewSource(1))
	random := make([]byte, 300000)
	rnd.Read(random)
	inputs := [][]byte{
		nil,
		[]byte("BT /F1 12 Tf (Hello) Tj ET"),
		random,
		bytes.Repeat([]byte("0 0 1 rg 10 10 20 20 re f\n"), 20000),
		[]byte("q 1 0 0 1 0 0 cm Q"),
	}
	want := make([][]byte, len(inputs))
	for i, in := range inputs {
		var buf bytes.Buffer
		w, err := zlib.NewWriterLevel(&buf, zlib.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(in)
		w.Close()
		want[i] = buf.Bytes()
	}
	const rounds = 8
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				i := (g + r) % len(inputs)
				got := sliceCompress(inputs[i])
				if !bytes.Equal(got, want[i]) {
					t.Errorf("goroutine %d, round %d: input %d compresses to other bytes than with a new writer", g, r, i)
				}
				if back, err := sliceUncompress(got); err != nil || !bytes.Equal(back, inputs[i]) {
					t.Errorf("goroutine %d, round %d: input %d does not come back: %v", g, r, i, err)
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestSliceUncompressNotZlib (patch 6): data that is not zlib is an error.
// Upstream deferred Close on the nil reader zlib.NewReader returned with
// its error, and panicked.
func TestSliceUncompressNotZlib(t *testing.T) {
	t.Parallel()
	for _, data := range [][]byte{nil, []byte("not zlib at all")} {
		if _, err := sliceUncompress(data); err == nil {
			t.Errorf("sliceUncompress(%q) succeeded", data)
		}
	}
}
