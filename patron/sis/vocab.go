package sis

import "github.com/patronkit/patronkit/patron"

// Modes of an integration profile (Profile.Mode).
const (
	// ModeImport adds new users only; a user that exists already is
	// reported and left as it is.
	ModeImport = "import"
	// ModeSynchronize updates the users it matches and adds the others.
	ModeSynchronize = "synchronize"
)

// MatchPrimaryID matches incoming users on primary_id (Profile.MatchBy);
// any other MatchBy names an identifier type (BARCODE, UNIV_ID...).
const MatchPrimaryID = "primary_id"

// What a synchronize does with an incoming user that matches nobody
// (Profile.Unmatched).
const (
	UnmatchedAdd    = "add"
	UnmatchedReject = "reject"
)

// Outcomes of one incoming user (Outcome.Outcome).
const (
	OutcomeCreated   = "created"
	OutcomeUpdated   = "updated"
	OutcomeUnchanged = "unchanged"
	OutcomeRejected  = "rejected"
	OutcomeFailed    = "failed"
)

// matchKey is how the profile matches incoming users.
func (p *Profile) matchKey() patron.MatchKey {
	if p.MatchBy == MatchPrimaryID {
		return patron.MatchOnPrimaryID()
	}
	return patron.MatchOnIdentifier(p.MatchBy)
}

// apply is how the profile applies incoming users: an import adds new
// users only, a synchronize updates the users it matches and adds the
// others unless it rejects them.
func (p *Profile) apply(dryRun bool) patron.ExternalApply {
	return patron.ExternalApply{
		Owner:         p.Code,
		Match:         p.matchKey(),
		AddUnmatched:  p.Mode == ModeImport || p.Unmatched == UnmatchedAdd,
		UpdateMatched: p.Mode == ModeSynchronize,
		RecordType:    p.RecordType,
		AllowStaff:    p.AllowStaff,
		DryRun:        dryRun,
	}
}

// outcomeOf names, in a run's report, what applying a user did.
func outcomeOf(e patron.Effect) string {
	switch e {
	case patron.EffectCreated:
		return OutcomeCreated
	case patron.EffectUpdated:
		return OutcomeUpdated
	case patron.EffectUnchanged:
		return OutcomeUnchanged
	case patron.EffectRefused:
		return OutcomeRejected
	}
	return OutcomeFailed
}
