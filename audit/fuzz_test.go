package audit

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// FuzzVerify changes one stored field of a valid chain (the database is
// outside input to Verify): Verify must not panic, and must report a
// problem whenever the change is real.
func FuzzVerify(f *testing.F) {
	f.Add(uint8(3), uint8(0), "other", int64(0))
	f.Add(uint8(0), uint8(5), "", int64(1))
	f.Add(uint8(7), uint8(9), "\xff", int64(-1))
	f.Add(uint8(2), uint8(10), "x", int64(5))
	f.Fuzz(runFuzzVerify)
}

func runFuzzVerify(t *testing.T, idx, field uint8, s string, n int64) {
	{
		log := &fakeLog{}
		priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
		l, err := New(log, &Options{Clock: testClock(), Logger: quietLogger(), CheckpointEvery: -1, CheckpointInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		l.key, l.keyID = priv, KeyID(priv.Public().(ed25519.PublicKey))
		for i := range 8 {
			if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		r := log.recs[int(idx)%len(log.recs)]
		orig := store.CloneAuditRecord(r)
		switch field % 12 {
		case 0:
			r.Target = s
		case 1:
			r.User = s
		case 2:
			r.Action = s
		case 3:
			r.ArgsDigest = s
		case 4:
			r.PrevHash = s
		case 5:
			r.Hash = s
		case 6:
			r.Seq = uint64(n)
		case 7:
			r.Time = r.Time.Add(time.Duration(n))
		case 8:
			r.LatencyMicros = n
		case 9:
			r.Policies = append(r.Policies, s)
		case 10:
			r.Args = []byte(s)
		case 11:
			r.Error = s
		}
		rep, err := Verify(context.Background(), log, priv.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		changed := !sameRecord(orig, r)
		if changed && rep.OK {
			t.Fatalf("change to record %d field %d (%q, %d) not detected", orig.Seq, field%12, s, n)
		}
		if !changed && !rep.OK {
			t.Fatalf("no change, but Verify reports %v", rep.FirstBad)
		}
	}
}

func sameRecord(a, b *store.AuditRecord) bool {
	ca, errA := canonicalContent(a)
	cb, errB := canonicalContent(b)
	return errA == nil && errB == nil && string(ca) == string(cb) && a.Seq == b.Seq && a.PrevHash == b.PrevHash &&
		a.Hash == b.Hash && string(a.Args) == string(b.Args)
}
