package patron

import (
	"fmt"
	"strings"

	"github.com/patronkit/patronkit/internal/keys"
)

// MatchKey says how an incoming external user is matched with the stored
// ones: on primary_id (the zero MatchKey) or on the value of one
// identifier type. Matching is case-blind and ignores surrounding blanks.
type MatchKey struct {
	// IDType is the identifier type users are matched on (BARCODE,
	// UNIV_ID...); empty matches on primary_id.
	IDType string
}

// MatchOnPrimaryID matches users on their primary_id.
func MatchOnPrimaryID() MatchKey { return MatchKey{} }

// MatchOnIdentifier matches users on the value of their identifier of
// type idType.
func MatchOnIdentifier(idType string) MatchKey { return MatchKey{IDType: idType} }

// OnPrimaryID tells whether m matches on primary_id.
func (m MatchKey) OnPrimaryID() bool { return m.IDType == "" }

// Of returns the key of u under m: its folded primary_id, or the folded
// value of its first identifier of m's type; "" when u has none. Two users
// with the same key are the same user.
func (m MatchKey) Of(u *User) string {
	if m.OnPrimaryID() {
		return keys.Fold(u.PrimaryID)
	}
	for i := range u.Identifiers {
		if strings.TrimSpace(u.Identifiers[i].IDType) == m.IDType {
			return keys.Fold(u.Identifiers[i].Value)
		}
	}
	return ""
}

// String names the key as reasons do: "primary_id" or "identifier
// BARCODE".
func (m MatchKey) String() string {
	if m.OnPrimaryID() {
		return "primary_id"
	}
	return "identifier " + m.IDType
}

// value is the key's value in u as u gives it (u normalized and holding
// the key).
func (m MatchKey) value(u *User) string {
	if m.OnPrimaryID() {
		return u.PrimaryID
	}
	return identifierOf(u, m.IDType).Value
}

// ExternalApply says how ApplyExternal applies incoming external users (an
// SIS's records).
type ExternalApply struct {
	// Owner names who sends the users, e.g. an SIS integration profile's
	// code: the users it creates or takes over hold it as their
	// external_id, and the notes and blocks it sends name it as their
	// author.
	Owner string
	// Match is how an incoming user is matched among all the external
	// users of the institution.
	Match MatchKey
	// AddUnmatched creates the incoming users that match nobody; without
	// it they are refused.
	AddUnmatched bool
	// UpdateMatched updates the external users incoming users match;
	// without it an incoming user that matches one is refused and the
	// stored user stays as it is.
	UpdateMatched bool
	// RecordType is given to incoming users whose record has none.
	// Default: PUBLIC.
	RecordType string
	// AllowStaff lets the users be created and update STAFF records (a
	// staff record signs in as staff and holds roles). Without it an
	// incoming STAFF user is refused, and so is one that matches a STAFF
	// record: the owner neither makes staff nor touches them.
	AllowStaff bool
	// DryRun computes what would happen to every user, with the changes,
	// and writes nothing.
	DryRun bool
}

// Effect is what applying an incoming external user did.
type Effect uint8

// The effects of applying an incoming external user.
const (
	// EffectCreated: the user matched nobody and was added.
	EffectCreated Effect = iota + 1
	// EffectUpdated: the user matched a stored external user, which was
	// changed.
	EffectUpdated
	// EffectUnchanged: the user matched a stored external user that was
	// already as the incoming record would leave it.
	EffectUnchanged
	// EffectRefused: the user was not applied, for the reason given (a
	// bad record, a collision, a match that may not be changed).
	EffectRefused
	// EffectFailed: the user could not be applied (the database failed).
	EffectFailed
)

// String names the effect: created, updated, unchanged, refused or
// failed.
func (e Effect) String() string {
	switch e {
	case EffectCreated:
		return "created"
	case EffectUpdated:
		return "updated"
	case EffectUnchanged:
		return "unchanged"
	case EffectRefused:
		return "refused"
	case EffectFailed:
		return "failed"
	}
	return fmt.Sprintf("Effect(%d)", uint8(e))
}

// Applied is what happened to one incoming external user.
type Applied struct {
	PrimaryID string
	Effect    Effect
	// Reason says why a user was refused or failed.
	Reason string
	// Changes names the fields and segment lists an update changed (or, in
	// a dry run, would change).
	Changes []string
	// UserID is the internal id of the user matched or created.
	UserID string
}
