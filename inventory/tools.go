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
	ToolNew      = "new"
)

// ToolChange is one difference RecordTools found.
type ToolChange struct {
	// Upstream and Tool name the tool.
	Upstream, Tool string
	// Kind is ToolAdded (first sight, recorded as the approved baseline),
	// ToolNew (first sight after the baseline with Options.HoldNewTools:
	// recorded unapproved, pending),
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
	// Pending reports a tool that was never approved (see
	// Options.HoldNewTools).
	Pending bool
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
	// Tools not yet recorded are held for approval once the upstream has
	// a baseline: records in the store, or a listing recorded before.
	hold := inv.opts.HoldNewTools && (len(existing) > 0 || inv.baselined[upstream])
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
		if r == nil && hold {
			// After the baseline: recorded, but not approved.
			r = &store.ToolRecord{Upstream: upstream, Name: name, Definition: string(d.canonical), Digest: d.digest, FirstSeen: now, LastSeen: now}
			ch := &ToolChange{Upstream: upstream, Tool: name, Kind: ToolNew, NewDigest: d.digest, Pending: true, Blocked: true}
			ev := &Event{Time: now, Kind: EventToolNew, Upstream: upstream, Tool: name, NewDigest: d.digest, Pending: true, Blocked: true,
				Detail: fmt.Sprintf("new tool %s of upstream %s (definition %.12s) is hidden and refused until an administrator approves it (mcpgate inventory approve-tool)", name, upstream, d.digest)}
			put(r, ch, ev)
			continue
		}
		if r == nil || (r.ApprovedDigest == "" && !inv.opts.HoldNewTools) {
			// First sight (or a tool left pending while new tools were
			// held, now that they are not): approved.
			if r == nil {
				r = &store.ToolRecord{Upstream: upstream, Name: name, FirstSeen: now}
			}
			r.Definition, r.Digest, r.LastSeen, r.Removed = string(d.canonical), d.digest, now, false
			r.ApprovedDefinition, r.ApprovedDigest, r.ApprovedAt, r.Changed = string(d.canonical), d.digest, now, false
			ch := &ToolChange{Upstream: upstream, Tool: name, Kind: ToolAdded, NewDigest: d.digest, ApprovedDigest: d.digest}
			ev := &Event{Time: now, Kind: EventToolFirstSeen, Upstream: upstream, Tool: name, NewDigest: d.digest,
				Detail: fmt.Sprintf("tool %s of upstream %s first seen; definition recorded as approved", name, upstream)}
			put(r, ch, ev)
			continue
		}
		if r.ApprovedDigest == "" {
			// Still awaiting its first approval.
			old, wasRemoved := r.Digest, r.Removed
			r.Removed = false
			switch {
			case old != d.digest:
				r.Definition, r.Digest, r.LastSeen = string(d.canonical), d.digest, now
				ch := &ToolChange{Upstream: upstream, Tool: name, Kind: ToolChanged, OldDigest: old, NewDigest: d.digest, Pending: true, Blocked: true}
				ev := &Event{Time: now, Kind: EventToolChanged, Upstream: upstream, Tool: name, OldDigest: old, NewDigest: d.digest, Pending: true, Blocked: true,
					Detail: fmt.Sprintf("definition of new tool %s of upstream %s changed before it was approved (was %.12s, now %.12s); still awaiting approval", name, upstream, old, d.digest)}
				put(r, ch, ev)
			case wasRemoved:
				r.LastSeen = now
				ch := &ToolChange{Upstream: upstream, Tool: name, Kind: ToolRestored, OldDigest: old, NewDigest: d.digest, Pending: true, Blocked: true}
				ev := &Event{Time: now, Kind: EventToolRestored, Upstream: upstream, Tool: name, OldDigest: old, NewDigest: d.digest, Pending: true, Blocked: true,
					Detail: fmt.Sprintf("tool %s of upstream %s is listed again; still awaiting approval", name, upstream)}
				put(r, ch, ev)
			case now.Sub(r.LastSeen) >= inv.opts.SeenResolution:
				r.LastSeen = now
				put(r, nil, nil)
			}
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
	inv.baselined[upstream] = true
	for _, r := range writes {
		inv.setCached(toolKey(upstream, r.Name), inv.blocks(r))
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
	first := old == ""
	r.ApprovedDefinition, r.ApprovedDigest = r.Definition, r.Digest
	r.Changed, r.ApprovedAt, r.ApprovedBy = false, now, by
	if err := inv.st.PutToolRecords(ctx, []*store.ToolRecord{r}); err != nil {
		return fmt.Errorf("inventory: approving tool %s/%s: %w", upstream, tool, err)
	}
	inv.setCached(toolKey(upstream, tool), false)
	detail := fmt.Sprintf("definition %.12s of tool %s of upstream %s approved", r.Digest, tool, upstream)
	if first {
		detail = fmt.Sprintf("new tool %s of upstream %s approved (definition %.12s)", tool, upstream, r.Digest)
	}
	inv.emit(Event{Time: now, Kind: EventToolApproved, Upstream: upstream, Tool: tool, By: by, OldDigest: old, NewDigest: r.Digest, Detail: detail})
	return nil
}

// IsToolBlocked reports whether calls to the tool must be refused: its
// definition changed since approval and Options.BlockChangedTools is set,
// or it was never approved (a new tool held by Options.HoldNewTools). A
// tool not recorded yet is blocked only with HoldNewTools (RecordTools
// sees every tool before it can be routed, so an unrecorded tool is one
// whose listing could not be recorded). If the store cannot be read it
// fails closed (true) while either option is set.
func (inv *Inventory) IsToolBlocked(ctx context.Context, upstream, tool string) bool {
	if !inv.opts.BlockChangedTools && !inv.opts.HoldNewTools {
		return false
	}
	f, err := inv.flagged(toolKey(upstream, tool), func() (bool, error) {
		r, err := inv.st.GetToolRecord(ctx, upstream, tool)
		if errors.Is(err, store.ErrNotFound) {
			return inv.opts.HoldNewTools, nil
		}
		if err != nil {
			return false, err
		}
		return inv.blocks(r), nil
	})
	return err != nil || f
}

// blocks reports whether calls of the tool recorded in r are refused.
func (inv *Inventory) blocks(r *store.ToolRecord) bool {
	if r.ApprovedDigest == "" {
		return inv.opts.HoldNewTools
	}
	return r.Changed && inv.opts.BlockChangedTools
}

// ToolState is the trust state of one recorded tool, for a catalogue that
// must decide what to list.
type ToolState struct {
	// Approved is the approved definition (RFC 8785 canonical JSON), nil
	// for a tool never approved.
	Approved jsontext.Value
	// Digest is the fingerprint of the latest definition recorded.
	Digest string
	// Changed reports a latest definition that differs from Approved.
	Changed bool
	// Pending reports a tool never approved (Options.HoldNewTools).
	Pending bool
	// Blocked reports that calls are refused (IsToolBlocked).
	Blocked bool
}

// ToolStates returns the state of every tool recorded for an upstream and
// still listed by it, by tool name. A tool missing from the map is not
// recorded: with Options.HoldNewTools it must be treated as pending.
func (inv *Inventory) ToolStates(ctx context.Context, upstream string) (map[string]ToolState, error) {
	recs, err := inv.st.ListToolRecords(ctx, upstream)
	if err != nil {
		return nil, fmt.Errorf("inventory: upstream %s: %w", upstream, err)
	}
	out := make(map[string]ToolState, len(recs))
	for _, r := range recs {
		if r.Removed || r.Upstream != upstream {
			continue
		}
		st := ToolState{Digest: r.Digest, Changed: r.Changed, Pending: r.ApprovedDigest == "", Blocked: inv.blocks(r)}
		if r.ApprovedDefinition != "" {
			st.Approved = jsontext.Value(r.ApprovedDefinition)
		}
		out[r.Name] = st
	}
	return out, nil
}

// ErrToolNotRecorded is returned by ToolState for a tool the inventory has
// no record of.
var ErrToolNotRecorded = errors.New("inventory: tool not recorded")

// ToolState returns the state of one tool, or an error wrapping
// ErrToolNotRecorded.
func (inv *Inventory) ToolState(ctx context.Context, upstream, tool string) (ToolState, error) {
	r, err := inv.st.GetToolRecord(ctx, upstream, tool)
	if errors.Is(err, store.ErrNotFound) {
		return ToolState{}, fmt.Errorf("%w: %s/%s", ErrToolNotRecorded, upstream, tool)
	}
	if err != nil {
		return ToolState{}, fmt.Errorf("inventory: tool %s/%s: %w", upstream, tool, err)
	}
	st := ToolState{Digest: r.Digest, Changed: r.Changed, Pending: r.ApprovedDigest == "", Blocked: inv.blocks(r)}
	if r.ApprovedDefinition != "" {
		st.Approved = jsontext.Value(r.ApprovedDefinition)
	}
	return st, nil
}

// HoldsNewTools reports whether Options.HoldNewTools is set.
func (inv *Inventory) HoldsNewTools() bool { return inv.opts.HoldNewTools }

// BlocksChangedTools reports whether Options.BlockChangedTools is set.
func (inv *Inventory) BlocksChangedTools() bool { return inv.opts.BlockChangedTools }
