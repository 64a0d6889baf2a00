package attestation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jung-kurt/gofpdf"
	"rsc.io/qr/coding"
)

// qrQuietZone is the white margin around a QR code, in modules, as the
// standard asks (ISO/IEC 18004 §6.3.8).
const qrQuietZone = 4

// encodeQR returns content as a QR code of error correction level M (15 %
// of the code may be lost), in the smallest version that holds it, with the
// mask of lowest penalty. rsc.io/qr encodes in microseconds but always
// applies mask 0; the standard asks for the mask that best avoids patterns
// a reader could mistake for the finders (§7.8.3), so each of the eight is
// tried.
func encodeQR(content string) (*coding.Code, error) {
	var enc coding.Encoding
	switch {
	case coding.Num(content).Check() == nil:
		enc = coding.Num(content)
	case coding.Alpha(content).Check() == nil:
		enc = coding.Alpha(content)
	default:
		enc = coding.String(content)
	}
	v := coding.Version(coding.MinVersion)
	for enc.Bits(v) > v.DataBytes(coding.M)*8 {
		if v++; v > coding.MaxVersion {
			return nil, errors.New("QR code: text too long")
		}
	}
	var best *coding.Code
	bestPenalty := 0
	for mask := coding.Mask(0); mask < 8; mask++ {
		plan, err := coding.NewPlan(v, coding.M, mask)
		if err != nil {
			return nil, fmt.Errorf("QR code: %w", err)
		}
		c, err := plan.Encode(enc)
		if err != nil {
			return nil, fmt.Errorf("QR code: %w", err)
		}
		if p := qrPenalty(c.Size, qrModules(c)); best == nil || p < bestPenalty {
			best, bestPenalty = c, p
		}
	}
	return best, nil
}

// qrPenalty scores a masked QR code of n×n modules, dark[y*n+x] for the
// module of column x and row y, by the four rules of ISO/IEC 18004:2015
// §7.8.3.1; the lower, the easier to read. Modules outside the symbol
// count as light, as in the quiet zone.
func qrPenalty(n int, dark []bool) int {
	score := 0
	// N1 (3 + run − 5 for each run of five or more modules of one colour)
	// and N3 (40 for each 1:1:3:1:1 finder-like pattern with four light
	// modules on one side), along the rows (module i of line j at j*n+i)
	// then along the columns (at i*n+j).
	line := make([]bool, n)
	for pass := 0; pass < 2; pass++ {
		for j := 0; j < n; j++ {
			for i := range line {
				if pass == 0 {
					line[i] = dark[j*n+i]
				} else {
					line[i] = dark[i*n+j]
				}
			}
			score += qrLinePenalty(line)
		}
	}
	// N2: 3 for each 2×2 block of one colour, blocks overlapping.
	dk := 0
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			c := dark[y*n+x]
			if c {
				dk++
			}
			if x+1 < n && y+1 < n && dark[y*n+x+1] == c && dark[(y+1)*n+x] == c && dark[(y+1)*n+x+1] == c {
				score += 3
			}
		}
	}
	// N4: 10 for each full 5 % the share of dark modules is away from half.
	diff := 2*dk - n*n
	if diff < 0 {
		diff = -diff
	}
	return score + 10*(diff*10/(n*n))
}

// qrLinePenalty is the N1 and N3 penalties of one row or column.
func qrLinePenalty(m []bool) int {
	score, run := 0, 1
	for i := 1; i <= len(m); i++ {
		if i < len(m) && m[i] == m[i-1] {
			run++
			continue
		}
		if run >= 5 {
			score += 3 + run - 5
		}
		run = 1
	}
	light := func(from, to int) bool { // modules from..to-1, outside ones light
		for i := max(from, 0); i < min(to, len(m)); i++ {
			if m[i] {
				return false
			}
		}
		return true
	}
	for i := 0; i+7 <= len(m); i++ {
		if m[i] && !m[i+1] && m[i+2] && m[i+3] && m[i+4] && !m[i+5] && m[i+6] &&
			(light(i-4, i) || light(i+7, i+11)) {
			score += 40
		}
	}
	return score
}

// qrModules returns c's modules as qrPenalty reads them.
func qrModules(c *coding.Code) []bool {
	dark := make([]bool, c.Size*c.Size)
	for y := 0; y < c.Size; y++ {
		row := c.Bitmap[y*c.Stride:]
		for x := 0; x < c.Size; x++ {
			dark[y*c.Size+x] = row[x/8]&(1<<uint(7-x%8)) != 0
		}
	}
	return dark
}

// drawQR draws c as a square of side size (mm, quiet zone included) whose
// top left corner is at (x, y), and makes it a link to url. The modules are
// vector rectangles, one per horizontal run, in one path filled once: sharp
// at any zoom or print resolution. They are laid out in module units, whole
// numbers, under a matrix that scales them: no rounding opens a seam
// between two rows.
func drawQR(f *gofpdf.Fpdf, c *coding.Code, x, y, size float64, url string) {
	k := f.GetConversionRatio() // points per mm
	_, pageH := f.GetPageSize()
	m := size / float64(c.Size+2*qrQuietZone) * k // a module, in points
	left := (x + size/float64(c.Size+2*qrQuietZone)*qrQuietZone) * k
	top := (pageH-y)*k - qrQuietZone*m
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	var b strings.Builder
	// Module (col, row) is the unit square from (col, row) to (col+1, row+1),
	// rows going down the page.
	b.WriteString("q 0 g " + num(m) + " 0 0 " + num(-m) + " " + num(left) + " " + num(top) + " cm\n")
	for row := 0; row < c.Size; row++ {
		for col := 0; col < c.Size; {
			if !c.Black(col, row) {
				col++
				continue
			}
			start := col
			for col < c.Size && c.Black(col, row) {
				col++
			}
			b.WriteString(strconv.Itoa(start) + " " + strconv.Itoa(row) + " " + strconv.Itoa(col-start) + " 1 re\n")
		}
	}
	b.WriteString("f Q")
	f.RawWriteStr(b.String())
	f.LinkString(x, y, size, size, url)
}
