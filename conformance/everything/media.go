package everything

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math"
)

// testPNG returns a small PNG image: a 16x16 square split into four
// colours. It is generated rather than stored so the fixture carries no
// binary files.
func testPNG() []byte {
	const size = 16
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	quadrant := [4]color.NRGBA{
		{R: 0xe5, G: 0x39, B: 0x35, A: 0xff},
		{R: 0x43, G: 0xa0, B: 0x47, A: 0xff},
		{R: 0x1e, G: 0x88, B: 0xe5, A: 0xff},
		{R: 0xfd, G: 0xd8, B: 0x35, A: 0xff},
	}
	for y := range size {
		for x := range size {
			q := 0
			if x >= size/2 {
				q++
			}
			if y >= size/2 {
				q += 2
			}
			img.SetNRGBA(x, y, quadrant[q])
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		// Encoding an in-memory NRGBA image into a bytes.Buffer cannot fail.
		panic(err)
	}
	return buf.Bytes()
}

// testWAV returns a short WAV file (RIFF, PCM, mono, 8 kHz, 16-bit): 100 ms
// of a 440 Hz tone.
func testWAV() []byte {
	const (
		sampleRate    = 8000
		bitsPerSample = 16
		channels      = 1
		samples       = sampleRate / 10
		freq          = 440.0
	)
	dataLen := samples * channels * bitsPerSample / 8
	var buf bytes.Buffer
	w := func(v any) { _ = binary.Write(&buf, binary.LittleEndian, v) } // bytes.Buffer writes never fail
	buf.WriteString("RIFF")
	w(uint32(36 + dataLen))
	buf.WriteString("WAVE")
	buf.WriteString("fmt ")
	w(uint32(16))                                        // fmt chunk size
	w(uint16(1))                                         // PCM
	w(uint16(channels))                                  // channels
	w(uint32(sampleRate))                                // sample rate
	w(uint32(sampleRate * channels * bitsPerSample / 8)) // byte rate
	w(uint16(channels * bitsPerSample / 8))              // block align
	w(uint16(bitsPerSample))                             // bits per sample
	buf.WriteString("data")
	w(uint32(dataLen))
	for i := range samples {
		v := 0.3 * math.Sin(2*math.Pi*freq*float64(i)/sampleRate)
		w(int16(v * math.MaxInt16))
	}
	return buf.Bytes()
}
