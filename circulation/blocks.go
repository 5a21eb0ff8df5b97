package circulation

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// Actions that blocks stop.
const (
	ActionLoan    = "loan"
	ActionRenew   = "renew"
	ActionRequest = "request"
)

// allActions are the actions a block stops unless it says otherwise.
var allActions = []string{ActionLoan, ActionRenew, ActionRequest}

// Types of automatic blocks.
const (
	// BlockInactive: the account's status is not active.
	BlockInactive = "inactive"
	// BlockExpired: the account's expiry date has passed.
	BlockExpired = "expired"
	// BlockMaxBalance: the patron owes more than their group's limit, in
	// all currencies (see BlockLimit.MaxBalance).
	BlockMaxBalance = "max_balance"
	// BlockMaxOverdue: the patron has more overdue loans than their
	// group's limit.
	BlockMaxOverdue = "max_overdue_loans"
)

// Block is one reason a patron may not borrow, renew or request: a manual
// block of their record (the user_blocks segment, while active and not
// expired) or an automatic one, derived from the record and the patron's
// loans and fees whenever an action is checked and never stored.
type Block struct {
	// Type is the block_type code of a manual block, or for an automatic
	// one BlockInactive, BlockExpired, BlockMaxBalance or BlockMaxOverdue.
	Type string `json:"type"`
	// Automatic is true for a block derived from the patron's state.
	Automatic bool `json:"automatic"`
	// Description says why the patron is blocked, for staff and patron.
	Description string `json:"description"`
	// Stops lists the actions the block stops: loan, renew, request.
	Stops []string `json:"stops"`
	// ExpiryDate (YYYY-MM-DD) is the last day of a manual block that
	// expires.
	ExpiryDate string `json:"expiry_date,omitempty"`
	// Cause is Description as a reason with its code (ReasonBlocked,
	// ReasonAccountInactive...), for saying it in the patron's language
	// (see Service.ReasonText).
	Cause fault.Reason `json:"-"`
}

// stops tells whether the block stops action.
func (b *Block) stops(action string) bool { return slices.Contains(b.Stops, action) }

// BlockLimit gives the limits past which patrons of a user group are
// blocked automatically. The limits of an institution are part of its
// terms of use (RuleSet.BlockLimits), tried in order: the first whose
// user group matches applies.
type BlockLimit struct {
	// UserGroup is the code of the user group, or empty or "*" for any.
	UserGroup string `json:"user_group,omitempty"`
	// MaxBalance blocks a patron who owes more than this, in minor units
	// of Currency (0: owing anything blocks); nil: no limit. Everything
	// the patron owes counts, in every currency: amounts in another
	// currency are converted at the rates of Options.Currencies (see
	// Currency), and an amount in a currency without a rate (one no
	// longer accepted) is over any limit. The block's description says
	// what is owed, and what it comes to at those rates.
	MaxBalance *int64 `json:"max_balance,omitempty"`
	// Currency is the ISO 4217 code of MaxBalance, one of the currencies
	// the library accepts; required with it.
	Currency string `json:"currency,omitempty"`
	// MaxOverdueLoans blocks a patron with more overdue loans than this
	// (0: any overdue loan blocks); nil: no limit.
	MaxOverdueLoans *int `json:"max_overdue_loans,omitempty"`
	// Stops lists the actions these blocks stop (loan, renew, request);
	// empty: all three.
	Stops []string `json:"stops,omitempty"`
}

// blockLimitRow is how a limit is stored.
type blockLimitRow struct {
	ID              string `gorm:"primaryKey;size:36"`
	Institution     string `gorm:"size:64;not null"`
	Position        int    `gorm:"not null"`
	UserGroup       string `gorm:"size:64"`
	MaxBalance      *int64
	Currency        string `gorm:"size:3"`
	MaxOverdueLoans *int
	Stops           string `gorm:"size:64"`
}

func (blockLimitRow) TableName() string { return "pk_circ_block_limits" }

func (r blockLimitRow) limit() BlockLimit {
	l := BlockLimit{UserGroup: r.UserGroup, MaxBalance: r.MaxBalance, Currency: r.Currency, MaxOverdueLoans: r.MaxOverdueLoans}
	if r.Stops != "" {
		l.Stops = strings.Split(r.Stops, ",")
	}
	return l
}

func limitRowOf(inst string, pos int, l BlockLimit) blockLimitRow {
	return blockLimitRow{ID: keys.NewID(), Institution: inst, Position: pos, UserGroup: l.UserGroup, MaxBalance: l.MaxBalance,
		Currency: l.Currency, MaxOverdueLoans: l.MaxOverdueLoans, Stops: strings.Join(l.Stops, ",")}
}

func normalizeLimit(l *BlockLimit) {
	trim(&l.UserGroup)
	if l.UserGroup == Any {
		l.UserGroup = ""
	}
	l.Currency = strings.ToUpper(strings.TrimSpace(l.Currency))
	var stops []string
	for _, a := range l.Stops {
		a = strings.ToLower(strings.TrimSpace(a))
		if !slices.Contains(stops, a) {
			stops = append(stops, a)
		}
	}
	l.Stops = stops
}

func (s *Service) checkLimit(c *checker, l *BlockLimit) {
	c.record(l)
	c.text("user_group", l.UserGroup, false, 64)
	if l.MaxBalance == nil && l.MaxOverdueLoans == nil {
		c.add("max_balance", "required", "a limit needs max_balance or max_overdue_loans")
	}
	if l.MaxBalance != nil {
		c.min("max_balance", *l.MaxBalance, 0)
		s.currencies.check(c, "currency", l.Currency)
	} else if l.Currency != "" {
		c.add("currency", "bad_format", "is given without max_balance")
	}
	if l.MaxOverdueLoans != nil {
		c.min("max_overdue_loans", int64(*l.MaxOverdueLoans), 0)
	}
	for i, a := range l.Stops {
		c.oneOf(fmt.Sprintf("stops[%d]", i), a, allActions...)
	}
}

func loadLimits(db *gorm.DB, inst string) ([]BlockLimit, error) {
	var rows []blockLimitRow
	if err := db.Where("institution = ?", inst).Order("position").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]BlockLimit, len(rows))
	for i, r := range rows {
		out[i] = r.limit()
	}
	return out, nil
}

// Blocks returns every block of the patron primaryID now, manual and
// automatic, each with the actions it stops. A patron who may do
// everything has none (an empty list). The read is on the audit trail
// ("blocks") unless the patron reads their own.
func (s *Service) Blocks(ctx context.Context, inst, primaryID string) ([]Block, error) {
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	u, err := ps.GetSegments(ctx, inst, primaryID, patron.KindBlocks)
	if err != nil {
		return nil, err
	}
	return s.BlocksOf(ctx, inst, u)
}

// BlocksOf is Blocks for a user already read, with their blocks segment.
func (s *Service) BlocksOf(ctx context.Context, inst string, u *patron.User) ([]Block, error) {
	out, err := s.blocks(ctx, inst, u)
	if err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, inst, u.PrimaryID, "blocks", nil); err != nil {
		return nil, err
	}
	return out, nil
}

// blocks derives the blocks of user u now.
func (s *Service) blocks(ctx context.Context, inst string, u *patron.User) ([]Block, error) {
	out := []Block{}
	today := s.today()
	if u.Status != "" && u.Status != patron.StatusActive {
		out = append(out, newBlock(Block{Type: BlockInactive, Automatic: true, Stops: allActions},
			cause(ReasonAccountInactive, "primary_id", u.PrimaryID)))
	}
	if u.ExpiryDate != "" && u.ExpiryDate < today {
		out = append(out, newBlock(Block{Type: BlockExpired, Automatic: true, Stops: allActions},
			cause(ReasonAccountExpired, "primary_id", u.PrimaryID, "expiry_date", u.ExpiryDate)))
	}
	for _, b := range u.Blocks {
		if b.BlockStatus != patron.StatusActive || (b.ExpiryDate != "" && b.ExpiryDate < today) {
			continue
		}
		d := b.BlockDescription
		if d == "" {
			d = b.BlockType
		}
		out = append(out, newBlock(Block{Type: b.BlockType, Stops: allActions, ExpiryDate: b.ExpiryDate},
			cause(ReasonBlocked, "primary_id", u.PrimaryID, "block_type", b.BlockType, "description", d)))
	}
	db := s.conn(ctx)
	limits, err := loadLimits(db, inst)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(limits, func(l BlockLimit) bool { return matches(l.UserGroup, u.UserGroup) })
	if i < 0 {
		return out, nil
	}
	l := limits[i]
	stops := l.Stops
	if len(stops) == 0 {
		stops = allActions
	}
	if l.MaxBalance != nil {
		owed, err := s.balance(db, inst, u.ID)
		if err != nil {
			return nil, err
		}
		if over, why := s.currencies.overLimit(u.PrimaryID, owed, *l.MaxBalance, l.Currency); over {
			out = append(out, newBlock(Block{Type: BlockMaxBalance, Automatic: true, Stops: stops}, why))
		}
	}
	if l.MaxOverdueLoans != nil {
		var n int64
		if err := db.Model(&Loan{}).Where("institution = ? AND user_id = ? AND status = ? AND due_at < ?",
			inst, u.ID, LoanOpen, s.loanClock()).Count(&n).Error; err != nil {
			return nil, err
		}
		if n > int64(*l.MaxOverdueLoans) {
			out = append(out, newBlock(Block{Type: BlockMaxOverdue, Automatic: true, Stops: stops},
				cause(ReasonOverdueLimit, "primary_id", u.PrimaryID, "overdue", strconv.FormatInt(n, 10), "limit", strconv.Itoa(*l.MaxOverdueLoans))))
		}
	}
	return out, nil
}

// newBlock is b with its cause r, and r's text as its description.
func newBlock(b Block, r fault.Reason) Block {
	b.Description, b.Cause = r.Text, r
	return b
}

// stopping returns the blocks that stop action, and their causes.
func stopping(bs []Block, action string) ([]Block, []fault.Reason) {
	var out []Block
	var reasons []fault.Reason
	for _, b := range bs {
		if b.stops(action) {
			out = append(out, b)
			reasons = append(reasons, b.Cause)
		}
	}
	return out, reasons
}

// BlockedError is the refusal of an action that blocks stopped (among
// other reasons, perhaps): it unwraps to a *fault.Error of kind Refused
// whose Reasons list every reason, and Blocks are the blocks among them.
type BlockedError struct {
	Err    *fault.Error
	Blocks []Block
}

func (e *BlockedError) Error() string { return e.Err.Error() }

// Unwrap gives the *fault.Error, so that fault.As finds it.
func (e *BlockedError) Unwrap() error { return e.Err }

// refusal is Refused with reasons, a *BlockedError when blocks are among
// them.
func refusal(detail string, reasons []fault.Reason, blocks []Block) error {
	if len(blocks) == 0 {
		return refused(detail, reasons...)
	}
	return &BlockedError{Err: refused(detail, reasons...), Blocks: blocks}
}
