package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// LegalHold is a hold staff set on a user because of a claim, an
// investigation or a litigation: while it stands the user is not deleted,
// purged or erased (see LegalHolds.DeletionReasons).
type LegalHold struct {
	Institution string `json:"-" gorm:"primaryKey;size:64"`
	// UserID is the user's internal id, so that a hold follows the user
	// through a change of primary_id.
	UserID string `json:"-" gorm:"primaryKey;size:36"`
	// PrimaryID is the user's primary_id as the record spells it now
	// (filled on reading, not stored).
	PrimaryID string `json:"primary_id" gorm:"-"`
	// Reason is why the hold was set, as staff wrote it.
	Reason string `json:"reason" gorm:"size:1024;not null"`
	// SetBy is the primary_id of who set it ("" for the host's own call).
	SetBy string    `json:"set_by" gorm:"size:255;not null"`
	SetAt time.Time `json:"set_at" gorm:"not null"`
}

// NoLegalHoldTag is the Tag of no hold (a nil *LegalHold).
const NoLegalHoldTag = "none"

// Tag tells one hold from another set before or after it on the same
// user (for a change conditional on the hold read): NoLegalHoldTag for
// none.
func (h *LegalHold) Tag() string {
	if h == nil {
		return NoLegalHoldTag
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", h.Reason, h.SetBy, h.SetAt.Unix()))
	return hex.EncodeToString(sum[:8])
}

// TableName implements gorm's Tabler.
func (LegalHold) TableName() string { return "pk_privacy_legal_holds" }

// ErrNoLegalHold is the NotFound of Get and Clear for a user without a
// legal hold.
var ErrNoLegalHold = &fault.Error{Kind: fault.NotFound, Detail: "the user has no legal hold"}

// MaxLegalHoldReason is the longest reason of a legal hold, in characters.
const MaxLegalHoldReason = 1024

// LegalHoldWhat is the What of the trail's entries that set or clear a
// legal hold (action patron.AuditUpdate).
const LegalHoldWhat = "legal hold"

// LegalHolds keeps the legal holds on users. It is a patron.DeletionGuard:
// the kit registers it, so that a held user is not deleted.
type LegalHolds struct {
	db      *gorm.DB
	patrons *patron.Service
	now     func() time.Time
}

// NewLegalHolds returns the legal holds kept in db on the users of
// patrons; now is the clock of the time a hold is set (time.Now when
// nil).
func NewLegalHolds(db *gorm.DB, patrons *patron.Service, now func() time.Time) (*LegalHolds, error) {
	if db == nil || patrons == nil {
		return nil, errors.New("privacy: NewLegalHolds needs a *gorm.DB and the patron service")
	}
	if now == nil {
		now = time.Now
	}
	return &LegalHolds{db: db, patrons: patrons, now: now}, nil
}

// Set sets a legal hold on the user primaryID of inst for reason, by the
// actor ctx carries, and returns it; a hold already set is replaced (its
// reason, who and when). It is on the audit trail as an update of
// LegalHoldWhat, with the reason, in the same transaction. An unknown
// user is NotFound; a reason empty, longer than MaxLegalHoldReason or
// holding control characters other than line breaks is Invalid (field
// reason).
//
// tag, when not empty, is the Tag of the hold the caller read
// (NoLegalHoldTag when there was none): a hold changed since is Stale and
// nothing changes.
func (h *LegalHolds) Set(ctx context.Context, inst, primaryID, reason, tag string) (*LegalHold, error) {
	actor, _ := patron.ActorFrom(ctx)
	var out *LegalHold
	err := txctx.Transaction(ctx, h.db, func(ctx context.Context, tx *gorm.DB) error {
		id, spelled, err := h.patrons.ID(ctx, inst, primaryID)
		if err != nil {
			return err
		}
		reason = strings.TrimSpace(reason)
		switch {
		case reason == "" || !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f }):
			return invalidReason("required", "must be text, not empty")
		case utf8.RuneCountInString(reason) > MaxLegalHoldReason:
			return invalidReason("too_long", fmt.Sprintf("must be at most %d characters", MaxLegalHoldReason))
		}
		if err := h.patrons.LockUser(ctx, inst, id); err != nil {
			return err
		}
		if tag != "" {
			was, err := h.of(ctx, inst, id)
			if err != nil {
				return err
			}
			if was.Tag() != tag {
				return &fault.Error{Kind: fault.Stale, Detail: fmt.Sprintf("the legal hold on user %q changed since it was read", spelled)}
			}
		}
		hold := LegalHold{Institution: inst, UserID: id, Reason: reason, SetBy: actor.ID, SetAt: h.now().UTC().Truncate(time.Second)}
		if err := tx.Where("institution = ? AND user_id = ?", inst, id).Delete(&LegalHold{}).Error; err != nil {
			return err
		}
		if err := tx.Create(&hold).Error; err != nil {
			return err
		}
		hold.PrimaryID = spelled
		out = &hold
		return h.patrons.RecordAudit(ctx, inst, patron.AuditUpdate, spelled, LegalHoldWhat, "set: "+reason)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Clear lifts the legal hold on the user primaryID of inst, on the audit
// trail as an update of LegalHoldWhat. An unknown user, or a user without
// a hold, is NotFound.
func (h *LegalHolds) Clear(ctx context.Context, inst, primaryID string) error {
	return txctx.Transaction(ctx, h.db, func(ctx context.Context, tx *gorm.DB) error {
		id, spelled, err := h.patrons.ID(ctx, inst, primaryID)
		if err != nil {
			return err
		}
		res := tx.Where("institution = ? AND user_id = ?", inst, id).Delete(&LegalHold{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNoLegalHold
		}
		return h.patrons.RecordAudit(ctx, inst, patron.AuditUpdate, spelled, LegalHoldWhat, "cleared")
	})
}

// Get returns the legal hold on the user primaryID of inst. An unknown
// user, or a user without a hold, is NotFound.
func (h *LegalHolds) Get(ctx context.Context, inst, primaryID string) (*LegalHold, error) {
	id, spelled, err := h.patrons.ID(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	hold, err := h.of(ctx, inst, id)
	if err != nil {
		return nil, err
	}
	if hold == nil {
		return nil, ErrNoLegalHold
	}
	hold.PrimaryID = spelled
	return hold, nil
}

func (h *LegalHolds) of(ctx context.Context, inst, userID string) (*LegalHold, error) {
	var hs []LegalHold
	if err := txctx.DB(ctx, h.db).Where("institution = ? AND user_id = ?", inst, userID).Limit(1).Find(&hs).Error; err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, nil
	}
	hs[0].SetAt = hs[0].SetAt.UTC()
	return &hs[0], nil
}

// DeletionReasons implements patron.DeletionGuard: a held user is not
// deleted (nor purged, nor erased), and the reason says why and since
// when.
func (h *LegalHolds) DeletionReasons(ctx context.Context, u *patron.User) ([]string, error) {
	rs, err := h.DeletionReasonsMany(ctx, []*patron.User{u})
	return rs[u.ID], err
}

// DeletionReasonsMany implements patron.BatchDeletionGuard, in one query
// per institution.
func (h *LegalHolds) DeletionReasonsMany(ctx context.Context, users []*patron.User) (map[string][]string, error) {
	byInst := map[string][]string{}
	for _, u := range users {
		byInst[u.Institution] = append(byInst[u.Institution], u.ID)
	}
	out := map[string][]string{}
	for inst, ids := range byInst {
		var hs []LegalHold
		if err := txctx.DB(ctx, h.db).Where("institution = ? AND user_id IN ?", inst, ids).Find(&hs).Error; err != nil {
			return nil, err
		}
		for _, hold := range hs {
			by := ""
			if hold.SetBy != "" {
				by = " by " + hold.SetBy
			}
			out[hold.UserID] = []string{fmt.Sprintf("a legal hold set%s on %s: %s", by, hold.SetAt.UTC().Format(time.DateOnly), hold.Reason)}
		}
	}
	return out, nil
}

func invalidReason(code, msg string) error {
	return &fault.Error{Kind: fault.Invalid, Detail: "the legal hold is refused", Fields: []fault.FieldError{{Field: "reason", Code: code, Message: msg}}}
}
