package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// FuzzVerify changes one stored field of a valid chain (the database is
// outside input to Verify): Verify must not panic, and must report a
// problem whenever the change is real.
func FuzzVerify(f *testing.F) {
	base := &fakeLog{}
	l, err := New(base, &Options{KeyPath: filepath.Join(f.TempDir(), "k.pem"), CheckpointEvery: 4, CheckpointInterval: -1, Clock: testClock(), Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 10 {
		if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
			f.Fatal(err)
		}
	}
	pub := l.PublicKey()
	l.Close()
	f.Add(uint8(3), uint8(0), "other", int64(0))
	f.Add(uint8(0), uint8(5), "", int64(1))
	f.Add(uint8(7), uint8(9), "\xff", int64(-1))
	f.Add(uint8(2), uint8(10), "x", int64(5))
	f.Add(uint8(2), uint8(12), "x", int64(5))
	f.Fuzz(func(t *testing.T, idx, field uint8, s string, n int64) {
		log := &fakeLog{}
		for _, r := range base.recs {
			log.recs = append(log.recs, store.CloneAuditRecord(r))
		}
		for _, c := range base.cps {
			cp := *c
			cp.Signature = append([]byte(nil), c.Signature...)
			log.cps = append(log.cps, &cp)
		}
		r := log.recs[int(idx)%len(log.recs)]
		orig := store.CloneAuditRecord(r)
		cpChanged := false
		switch field % 13 {
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
		case 12:
			c := log.cps[int(idx)%len(log.cps)]
			old := c.Hash
			c.Hash = s
			cpChanged = s != old
		}
		rep, err := Verify(context.Background(), log, pub)
		if err != nil {
			t.Fatal(err)
		}
		changed := cpChanged || !sameRecord(orig, r)
		if changed && rep.OK {
			t.Fatalf("change to record %d field %d (%q, %d) not detected", orig.Seq, field%13, s, n)
		}
		if !changed && !rep.OK {
			t.Fatalf("no change, but Verify reports %v", rep.FirstBad)
		}
	})
}

func sameRecord(a, b *store.AuditRecord) bool {
	ca, errA := canonicalContent(a)
	cb, errB := canonicalContent(b)
	return errA == nil && errB == nil && string(ca) == string(cb) && a.Seq == b.Seq && a.PrevHash == b.PrevHash &&
		a.Hash == b.Hash && string(a.Args) == string(b.Args)
}

// FuzzCanonicalContent checks that the direct encoding of a record's
// hashed content (appendCanonicalContent) is byte for byte the JSON
// encoder's canonical form, which defines the chain hash, and that both
// refuse the same records.
func FuzzCanonicalContent(f *testing.F) {
	f.Add("alice", "tools/call", "read \"file\"\n\\ \x01\x7f é \u2028 😀 </script>", "p1", int64(12), int64(1733580000123456789))
	f.Add("", "", "", "", int64(0), int64(0))
	f.Add("\xff", "a", "b", "", int64(-5), int64(-1))
	f.Add("u", "\u00e9\u0000", "\t\r\b\f", "\x1f", int64(1<<62), int64(1))
	f.Fuzz(func(t *testing.T, user, action, errText, policy string, latency, nanos int64) {
		r := &store.AuditRecord{User: user, Client: policy + user, Session: errText, Upstream: action, Action: action,
			Target: errText, Decision: policy, PolicyVersion: user, ArgsDigest: action, ResultDigest: policy,
			Outcome: user, Error: errText, LatencyMicros: latency, Phase: action, Time: time.Unix(0, nanos)}
		if policy != "" {
			r.Policies = []string{policy, errText}
		}
		want, werr := canonicalContentJSON(r)
		if _, ok := appendCanonicalContent(nil, r); !ok && latency >= -(1<<53) && latency <= 1<<53 && werr == nil {
			t.Fatalf("direct encoding refused %+v, the JSON encoder gave %s", r, want)
		}
		got, gerr := canonicalContent(r)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("canonicalContent: %s, %v; the JSON encoder: %s, %v", got, gerr, want, werr)
		}
		if string(got) != string(want) {
			t.Fatalf("direct encoding\n %s\nJSON encoder\n %s", got, want)
		}
	})
}
