package attestation

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"sync"

	"github.com/skip2/go-qrcode"
)

// qrModulePixels is the size of one QR module in the PNG. A whole number of
// pixels per module keeps the edges sharp however a viewer scales the image.
const qrModulePixels = 4

// qrEncoder encodes the QR code images. Its buffer pool lets documents reuse
// the PNG encoder's zlib state, which is most of the cost of a PNG this
// small. The image is 8-bit grey rather than a 1-bit palette: gofpdf would
// compress a palette with a zlib writer of its own per document.
type qrEncoder struct {
	png png.Encoder
}

func newQREncoder() *qrEncoder {
	return &qrEncoder{png: png.Encoder{
		CompressionLevel: png.BestSpeed,
		BufferPool:       &encoderPool{},
	}}
}

// encode returns content as a QR code PNG, medium error correction, with
// the standard quiet zone of four white modules.
func (e *qrEncoder) encode(content string) ([]byte, error) {
	qr, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	bitmap := qr.Bitmap() // quiet zone included
	n := len(bitmap) * qrModulePixels
	img := image.NewGray(image.Rect(0, 0, n, n))
	for y := range n {
		row := bitmap[y/qrModulePixels]
		pix := img.Pix[y*img.Stride : y*img.Stride+n]
		for x := range pix {
			if !row[x/qrModulePixels] {
				pix[x] = 0xff
			}
		}
	}
	var buf bytes.Buffer
	if err := e.png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	return buf.Bytes(), nil
}

// encoderPool is a png.EncoderBufferPool safe for concurrent use.
type encoderPool struct{ pool sync.Pool }

func (p *encoderPool) Get() *png.EncoderBuffer {
	b, _ := p.pool.Get().(*png.EncoderBuffer)
	return b
}

func (p *encoderPool) Put(b *png.EncoderBuffer) { p.pool.Put(b) }
