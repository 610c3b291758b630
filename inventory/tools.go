package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/store"
)

// Tool change kinds.
const (
	ToolAdded    = "added"
	ToolChanged  = "changed"
	ToolReverted = "reverted"
	ToolRemoved  = "removed"
	ToolRestored = "restored"
)

// ToolChange is one difference RecordTools found.
type ToolChange struct {
	// Upstream and Tool name the tool.
	Upstream, Tool string
	// Kind is ToolAdded (first sight, recorded as the approved baseline),
	// ToolChanged (the definition now differs from the approved one),
	// ToolReverted (back to the approved definition), ToolRemoved or
	// ToolRestored (listed again with its last definition).
	Kind string
	// OldDigest and NewDigest are the fingerprints of the previous and
	// current definitions; ApprovedDigest that of the approved one.
	OldDigest, NewDigest, ApprovedDigest string
	// Flagged reports that the definition differs from the approved one;
	// Blocked that calls are refused until ApproveTool.
	Flagged, Blocked bool
}

// ToolFingerprint returns the RFC 8785 canonical form of a tool
// definition (a JSON object from a tools/list result), the hex SHA-256 of
// that form, and the tool's name. Every member counts: name, title,
// description, input and output schemas, annotations, icons, _meta.
func ToolFingerprint(def jsontext.Value) (canonical []byte, digest, name string, err error) {
	if len(def) > MaxDocumentSize {
		return nil, "", "", fmt.Errorf("tool definition is %d bytes, more than %d", len(def), MaxDocumentSize)
	}
	c := def.Clone()
	if err := c.Canonicalize(); err != nil {
		return nil, "", "", fmt.Errorf("tool definition: %w", err)
	}
	if c.Kind() != '{' {
		return nil, "", "", errors.New("tool definition is not a JSON object")
	}
	var t struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(c, &t); err != nil {
		return nil, "", "", fmt.Errorf("tool definition: name: %w", err)
	}
	if t.Name == "" {
		return nil, "", "", errors.New("tool definition has no name")
	}
	sum := sha256.Sum256(c)
	return c, hex.EncodeToString(sum[:]), t.Name, nil
}

// RecordTools records the complete tool list of an upstream, as it just
// listed it. A tool seen for the first time is recorded as approved. A
// tool whose definition differs from the approved one is flagged and,
// with Options.BlockChangedTools, blocked until ApproveTool; one that
// returns to the approved definition is cleared. Tools no longer listed
// are marked removed (their baseline is kept). Every difference is
// returned and emitted as an event. If any definition is invalid (not an
// object, no name, a duplicate name, invalid JSON) nothing is recorded
// and the error names it.
func (inv *Inventory) RecordTools(ctx context.Context, upstream string, tools []jsontext.Value) ([]ToolChange, error) {
	if upstream == "" {
		return nil, errors.New("inventory: empty upstream name")
	}
	type def struct {
		canonical []byte
		digest    string
	}
	defs := make(map[string]def, len(tools))
	order := make([]string, 0, len(tools))
	for i, t := range tools {
		c, d, name, err := ToolFingerprint(t)
		if err != nil {
			return nil, fmt.Errorf("inventory: upstream %s: tool %d: %w", upstream, i, err)
		}
		if _, dup := defs[name]; dup {
			return nil, fmt.Errorf("inventory: upstream %s: tool %q is listed twice", upstream, name)
		}
		defs[name] = def{c, d}
		order = append(order, name)
	}
	now := inv.now()

	inv.mu.Lock()
	defer inv.mu.Unlock()
	existing, err := inv.st.ListToolRecords(ctx, upstream)
	if err != nil {
		return nil, fmt.Errorf("inventory: upstream %s: %w", upstream, err)
	}
	byName := make(map[string]*store.ToolRecord, len(existing))
	for _, r := range existing {
		byName[r.Name] = r
	}
	var (
		changes []ToolChange
		events  []Event
		writes  []*store.ToolRecord
	)
	put := func(r *store.ToolRecord, ch *ToolChange, ev *Event) {
		writes = append(writes, r)
		if ch != nil {
			changes = append(changes, *ch)
			events = append(events, *ev)
		}
	}
	for _, name := range order {
		d := defs[name]
		r := byName[name]
		if r == nil {
			r = &store.ToolRecord{Upstream: upstream, Name: name, Definition: string(d.canonical), Digest: d.digest,
				ApprovedDefinition: string(d.canonical), ApprovedDigest: d.digest, FirstSeen: now, LastSeen: now, ApprovedAt: now}
			ch := &ToolChange{Upstream: upstream, Tool: name, Kind: ToolAdded, NewDigest: d.digest, ApprovedDigest: d.digest}
			ev := &Event{Time: now, Kind: EventToolFirstSeen, Upstream: upstream, Tool: name, NewDigest: d.digest,
				Detail: fmt.Sprintf("tool %s of upstream %s first seen; definition recorded as approved", name, upstream)}
			put(r, ch, ev)
			continue
		}
		old := r.Digest
		wasRemoved := r.Removed
		r.Removed = false
		if old == d.digest {
			if wasRemoved {
				r.LastSeen = now
				ch := &ToolChange{Upstream: upstream, Tool: name, Kind: ToolRestored, OldDigest: old, NewDigest: d.digest, ApprovedDigest: r.ApprovedDigest,
					Flagged: r.Changed, Blocked: r.Changed && inv.opts.BlockChangedTools}
				ev := &Event{Time: now, Kind: EventToolRestored, Upstream: upstream, Tool: name, OldDigest: old, NewDigest: d.digest, Flagged: ch.Flagged, Blocked: ch.Blocked,
					Detail: fmt.Sprintf("tool %s of upstream %s is listed again", name, upstream)}
				put(r, ch, ev)
			} else if now.Sub(r.LastSeen) >= inv.opts.SeenResolution {
				r.LastSeen = now
				put(r, nil, nil)
			}
			continue
		}
		r.Definition, r.Digest, r.LastSeen = string(d.canonical), d.digest, now
		ch := &ToolChange{Upstream: upstream, Tool: name, OldDigest: old, NewDigest: d.digest, ApprovedDigest: r.ApprovedDigest}
		ev := &Event{Time: now, Upstream: upstream, Tool: name, OldDigest: old, NewDigest: d.digest}
		if d.digest == r.ApprovedDigest {
			r.Changed = false
			ch.Kind, ev.Kind = ToolReverted, EventToolReverted
			ev.Detail = fmt.Sprintf("tool %s of upstream %s is back to its approved definition", name, upstream)
		} else {
			r.Changed, r.ChangedAt = true, now
			ch.Kind, ev.Kind = ToolChanged, EventToolChanged
			ch.Flagged, ch.Blocked = true, inv.opts.BlockChangedTools
			ev.Flagged, ev.Blocked = true, ch.Blocked
			ev.Detail = fmt.Sprintf("definition of tool %s of upstream %s changed since approval (approved %.12s, now %.12s)", name, upstream, r.ApprovedDigest, d.digest)
			if ch.Blocked {
				ev.Detail += "; blocked until approved"
			}
		}
		put(r, ch, ev)
	}
	for _, r := range existing {
		if _, listed := defs[r.Name]; listed || r.Removed {
			continue
		}
		r.Removed = true
		ch := &ToolChange{Upstream: upstream, Tool: r.Name, Kind: ToolRemoved, OldDigest: r.Digest, ApprovedDigest: r.ApprovedDigest, Flagged: r.Changed}
		ev := &Event{Time: now, Kind: EventToolRemoved, Upstream: upstream, Tool: r.Name, OldDigest: r.Digest,
			Detail: fmt.Sprintf("tool %s of upstream %s is no longer listed", r.Name, upstream)}
		put(r, ch, ev)
	}
	// One atomic write: a failure leaves the previous state, and no
	// event is emitted for a change that was not recorded.
	if err := inv.st.PutToolRecords(ctx, writes); err != nil {
		return nil, fmt.Errorf("inventory: upstream %s: recording tools: %w", upstream, err)
	}
	for _, r := range writes {
		inv.setCached(toolKey(upstream, r.Name), r.Changed)
	}
	for _, ev := range events {
		inv.emit(ev)
	}
	return changes, nil
}

// ApproveTool makes the tool's latest definition its approved baseline
// and clears the flag. by names the approver.
func (inv *Inventory) ApproveTool(ctx context.Context, upstream, tool, by string) error {
	now := inv.now()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	r, err := inv.st.GetToolRecord(ctx, upstream, tool)
	if err != nil {
		return fmt.Errorf("inventory: approving tool %s/%s: %w", upstream, tool, err)
	}
	old := r.ApprovedDigest
	r.ApprovedDefinition, r.ApprovedDigest = r.Definition, r.Digest
	r.Changed, r.ApprovedAt, r.ApprovedBy = false, now, by
	if err := inv.st.PutToolRecords(ctx, []*store.ToolRecord{r}); err != nil {
		return fmt.Errorf("inventory: approving tool %s/%s: %w", upstream, tool, err)
	}
	inv.setCached(toolKey(upstream, tool), false)
	inv.emit(Event{Time: now, Kind: EventToolApproved, Upstream: upstream, Tool: tool, By: by, OldDigest: old, NewDigest: r.Digest,
		Detail: fmt.Sprintf("definition %.12s of tool %s of upstream %s approved", r.Digest, tool, upstream)})
	return nil
}

// IsToolBlocked reports whether calls to the tool must be refused because
// its definition changed since approval and Options.BlockChangedTools is
// set. Unknown tools are not blocked (RecordTools has not seen them yet).
// If the store cannot be read it fails closed (true) while blocking is
// configured.
func (inv *Inventory) IsToolBlocked(ctx context.Context, upstream, tool string) bool {
	if !inv.opts.BlockChangedTools {
		return false
	}
	f, err := inv.flagged(toolKey(upstream, tool), func() (bool, error) {
		r, err := inv.st.GetToolRecord(ctx, upstream, tool)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return r.Changed, nil
	})
	return err != nil || f
}
