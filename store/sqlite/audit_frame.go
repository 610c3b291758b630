package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/mcpgate/mcpgate/store"
)

// The audit segment file (audit_segment.go) holds a header and then
// records, one frame each:
//
//	header: "MCPGSEG1" (8 bytes), epoch (uint64 LE), end (uint64 LE),
//	        waiters (uint32, native order), 4 bytes of padding
//	frame:  payload length (uint32 LE), CRC-32C of the payload (uint32 LE), payload
//	payload: version byte (1), then the record's fields (see appendRecord)
//
// The epoch changes whenever records leave the segment for the database
// (the file is then truncated to its header) or are appended to the
// database directly; end is the offset after the last acknowledged
// frame. Writers map the header into memory (shared), so that one
// holding the file lock knows from the epoch and the end, without a
// system call, whether its view of the chain head is still current;
// waiters counts the processes waiting for the file lock (the holder
// then gives it up instead of keeping it for its next use).

const (
	segMagic      = "MCPGSEG1"
	segHeaderLen  = 32
	segWaitersOff = 24
	frameHeadLen  = 8
	frameVersion  = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn reports bytes at the end of a segment that are not a whole,
// valid frame: a write cut short (power loss) or damage.
var errTorn = errors.New("torn or damaged frame")

// appendFrame appends r as one frame to b.
func appendFrame(b []byte, r *store.AuditRecord) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeadLen)...)
	b = appendRecord(b, r)
	payload := b[start+frameHeadLen:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

// appendRecord appends the payload encoding of r: the version, Seq,
// Time (Unix nanoseconds, 0 for the zero time, as the table stores it),
// LatencyMicros, the string fields, Policies (count, then each) and Args
// and Result (length+1, 0 for nil). Integers are varints; strings and
// byte slices are length-prefixed.
func appendRecord(b []byte, r *store.AuditRecord) []byte {
	b = append(b, frameVersion)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendVarint(b, ts(r.Time))
	b = binary.AppendVarint(b, r.LatencyMicros)
	for _, s := range [...]string{r.User, r.Client, r.Session, r.Upstream, r.Action, r.Target, r.Decision, r.PolicyVersion,
		r.ArgsDigest, r.ResultDigest, r.Outcome, r.Error, r.Phase, r.PrevHash, r.Hash} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Policies)))
	for _, p := range r.Policies {
		b = appendString(b, p)
	}
	b = appendBytes(b, r.Args)
	b = appendBytes(b, r.Result)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

// decodeFrames decodes the frames in data (a segment without its
// header). It returns the records of the valid frames that lead data and
// how many bytes they take; when that is less than len(data), err says
// why the next frame is not valid (errTorn).
func decodeFrames(data []byte) (recs []*store.AuditRecord, n int, err error) {
	for n < len(data) {
		rest := data[n:]
		if len(rest) < frameHeadLen {
			return recs, n, fmt.Errorf("%w: %d bytes of a frame header at offset %d", errTorn, len(rest), n)
		}
		size := binary.LittleEndian.Uint32(rest)
		if uint64(size) > uint64(len(rest)-frameHeadLen) {
			return recs, n, fmt.Errorf("%w: frame at offset %d says %d bytes, %d left", errTorn, n, size, len(rest)-frameHeadLen)
		}
		payload := rest[frameHeadLen : frameHeadLen+int(size)]
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(rest[4:]) {
			return recs, n, fmt.Errorf("%w: checksum mismatch in the frame at offset %d", errTorn, n)
		}
		r, err := decodeRecord(payload)
		if err != nil {
			return recs, n, fmt.Errorf("%w: frame at offset %d: %v", errTorn, n, err)
		}
		recs = append(recs, r)
		n += frameHeadLen + int(size)
	}
	return recs, n, nil
}

// decoder reads a payload; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("bad %s", what)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// take returns the next n bytes (n is checked against what is left, so a
// length in a damaged frame cannot make it allocate).
func (d *decoder) take(n uint64, what string) []byte {
	if n > uint64(len(d.b)) {
		d.fail(what)
		d.b = nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(what string) string {
	return string(d.take(d.uvarint(what), what))
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if n == 0 {
		return nil
	}
	return append([]byte{}, d.take(n-1, what)...)
}

// decodeRecord decodes a payload written by appendRecord.
func decodeRecord(p []byte) (*store.AuditRecord, error) {
	if len(p) == 0 || p[0] != frameVersion {
		return nil, errors.New("unknown record version")
	}
	d := &decoder{b: p[1:]}
	var r store.AuditRecord
	r.Seq = d.uvarint("seq")
	r.Time = fromTS(d.varint("time"))
	r.LatencyMicros = d.varint("latency")
	for _, s := range [...]*string{&r.User, &r.Client, &r.Session, &r.Upstream, &r.Action, &r.Target, &r.Decision, &r.PolicyVersion,
		&r.ArgsDigest, &r.ResultDigest, &r.Outcome, &r.Error, &r.Phase, &r.PrevHash, &r.Hash} {
		*s = d.string("string field")
	}
	np := d.uvarint("policy count")
	if np > uint64(len(d.b)) {
		// Every policy takes at least one byte.
		d.fail("policy count")
	}
	if d.err == nil && np > 0 {
		r.Policies = make([]string, 0, np)
		for range np {
			r.Policies = append(r.Policies, d.string("policy"))
		}
	}
	r.Args = d.bytes("arguments")
	r.Result = d.bytes("result")
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the record", len(d.b))
	}
	if r.Seq == 0 || r.Seq > math.MaxInt64 {
		return nil, fmt.Errorf("seq %d out of range", r.Seq)
	}
	return &r, nil
}
