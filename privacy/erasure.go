package privacy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// ErasureReport is a proof-of-erasure report: what erasing (or purging)
// one user did, per table, without naming them. RecordErasure takes it,
// or any value of the host's that encodes to JSON.
type ErasureReport struct {
	Institution string `json:"institution"`
	// Subject is who the trail names in the user's place (the
	// replacement given to Forget).
	Subject string    `json:"subject"`
	At      time.Time `json:"at"`
	// Tables are the counts per table, in the order the erasure went.
	Tables []ErasureCount `json:"tables"`
	// Forgotten is how many entries of the audit trail no longer name
	// the user (Forget).
	Forgotten int64 `json:"trail_entries_forgotten"`
}

// ErasureCount is what an erasure did to one table: rows removed, and rows
// kept for statistics with nothing left that identifies the user.
type ErasureCount struct {
	Table      string `json:"table"`
	Removed    int64  `json:"removed"`
	Anonymized int64  `json:"anonymized"`
}

// ErasureProof is what RecordErasure recorded: the report as canonical
// JSON, its SHA-256 (hex), and the sequence number of the trail's entry
// that holds that hash.
type ErasureProof struct {
	Report json.RawMessage `json:"report"`
	Hash   string          `json:"hash"`
	Seq    int64           `json:"seq"`
}

// ErasureWhat is the What of the trail's entry recording an erasure (its
// action is patron.AuditDelete, its details "sha256:" and the report's
// hash).
const ErasureWhat = "erasure"

// CanonicalJSON is report encoded as JSON the same way every time: the
// keys of every object sorted, no spaces, numbers as encoded, and its
// hex SHA-256. Anyone holding a report can check it against the hash on
// the trail by computing this again.
func CanonicalJSON(report any) ([]byte, string, error) {
	raw, err := json.Marshal(report)
	if err != nil {
		return nil, "", err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, "", err
	}
	out, err := json.Marshal(v) // maps come out with their keys sorted
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(out)
	return out, hex.EncodeToString(sum[:]), nil
}

// RecordErasure records on inst's trail that a user was erased: an entry
// by the actor ctx carries (by the way in it carries), of action
// patron.AuditDelete on ErasureWhat, whose subject is replacement (who
// the trail names in the user's place, never the user) and whose details
// are "sha256:" and the hash of report's canonical JSON (CanonicalJSON).
// Within the transaction ctx carries (the erasure's) it commits or rolls
// back with it; otherwise it is written at once. It returns the proof.
func (s *Service) RecordErasure(ctx context.Context, inst, replacement string, report any) (*ErasureProof, error) {
	proofs, err := s.recordErasures(ctx, inst, []erased{{replacement, report}})
	if err != nil {
		return nil, err
	}
	return proofs[0], nil
}

// erased is a user erased: who the trail names in their place, and the
// report of their erasure.
type erased struct {
	replacement string
	report      any
}

// recordErasures is RecordErasure for several users at once, their
// entries written together; it answers the proofs in the order of us.
func (s *Service) recordErasures(ctx context.Context, inst string, us []erased) ([]*ErasureProof, error) {
	actor, _ := patron.ActorFrom(ctx)
	origin, _ := patron.OriginFrom(ctx)
	proofs := make([]*ErasureProof, len(us))
	entries := make([]*Entry, len(us))
	for i, u := range us {
		if inst == "" || u.replacement == "" {
			return nil, errors.New("privacy: an erasure's entry needs an institution and who the trail names instead")
		}
		doc, sum, err := CanonicalJSON(u.report)
		if err != nil {
			return nil, err
		}
		e := EntryOf(patron.AuditEvent{At: s.now(), Institution: inst, Actor: actor, Action: patron.AuditDelete,
			PrimaryID: u.replacement, What: ErasureWhat, Details: "sha256:" + sum, Origin: origin})
		entries[i], proofs[i] = &e, &ErasureProof{Report: doc, Hash: sum}
	}
	if len(us) == 0 {
		return proofs, nil
	}
	var err error
	if txctx.In(ctx) {
		err = s.append(txctx.DB(ctx, s.db), entries)
	} else {
		err = s.write(txctx.Without(ctx), entries)
	}
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		proofs[i].Seq = e.Seq
	}
	return proofs, nil
}
