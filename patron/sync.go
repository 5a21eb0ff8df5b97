package patron

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
)

// Modes of an integration profile.
const (
	// ModeImport adds new users only; a user that exists already is
	// reported and left as it is.
	ModeImport = "import"
	// ModeSynchronize updates the users it matches and adds the others.
	ModeSynchronize = "synchronize"
)

// MatchPrimaryID matches incoming users on primary_id; any other MatchBy
// names an identifier type (BARCODE, UNIV_ID...).
const MatchPrimaryID = "primary_id"

// What a synchronize does with an incoming user that matches nobody.
const (
	UnmatchedAdd    = "add"
	UnmatchedReject = "reject"
)

// Outcomes of one incoming user.
const (
	OutcomeCreated   = "created"
	OutcomeUpdated   = "updated"
	OutcomeUnchanged = "unchanged"
	OutcomeRejected  = "rejected"
	OutcomeFailed    = "failed"
)

// SyncRule is how an integration profile applies incoming users.
type SyncRule struct {
	// Profile is the integration profile's code; the users it creates or
	// takes over name it as their external_id.
	Profile string
	// Mode is ModeImport or ModeSynchronize.
	Mode string
	// MatchBy is MatchPrimaryID or an identifier type.
	MatchBy string
	// Unmatched is UnmatchedAdd or UnmatchedReject (synchronize only).
	Unmatched string
	// RecordType is given to incoming users whose record has none.
	// Default: PUBLIC.
	RecordType string
	// AllowStaff lets the profile create and update STAFF records (a staff
	// record signs in as staff and holds roles). Without it an incoming
	// STAFF user is rejected, and so is one that matches a STAFF record:
	// the profile neither makes staff nor touches them.
	AllowStaff bool
	// DryRun computes every outcome, with the changes, and writes nothing.
	DryRun bool
}

// SyncResult is what happened to one incoming user.
type SyncResult struct {
	PrimaryID string `json:"primary_id"`
	Outcome   string `json:"outcome"`
	// Reason says why a user was rejected or failed.
	Reason string `json:"reason,omitempty"`
	// Changes names the fields and segment lists an update changed (or, in
	// a dry run, would change).
	Changes []string `json:"changes,omitempty"`
	// UserID is the internal id of the user matched or created.
	UserID string `json:"-"`
}

var errDryRun = errors.New("dry run: roll back")

// SyncBatch applies incoming users, in order, as an integration profile
// does. Each user is applied whole or not at all; a user whose record is
// the same as the last one applied is skipped without being read whole.
// The incoming users are changed (normalized) in place. The outcome of
// each user is the one it would have if the users were applied one after
// the other, in order: a user that takes a primary_id or an identifier an
// earlier user of the batch took is rejected, one that takes what an
// earlier user gave up is applied; a dry run (rule.DryRun) gives the same
// outcomes. To apply a file in several batches, use a SyncLoad.
//
// Matching looks among all external users of the institution, whatever
// profile made them; internal users are never matched, and an incoming
// user that collides with one is rejected. On a match, core fields are
// replaced except the retained ones that staff changed by hand or that the
// incoming record leaves empty; the user's External segments are replaced
// by the incoming ones and Internal segments stay.
func (s *Service) SyncBatch(ctx context.Context, inst string, in []*User, rule SyncRule) []SyncResult {
	l := &SyncLoad{s: s, inst: inst, rule: rule}
	if rule.DryRun {
		l.dry = newDryRun(true)
	}
	return l.Apply(ctx, in)
}

// A SyncLoad applies the users of one load (an SIS file, a run of an
// integration profile) in batches, as SyncBatch does, each batch after
// the users of the batches before: the outcome of each user is the one it
// would have if the whole load were applied one user after the other. A
// dry run (the rule's DryRun) writes nothing and gives, user by user, the
// outcomes the load gives: a user that takes a primary_id or identifier an
// earlier user of the load took is rejected, and one that takes what an
// earlier user gave up is applied, as in the load itself.
//
// A load applies each user once: a user matched by the same key as an
// earlier user of the load (the same primary_id or identifier, whatever
// its case) is rejected. A SyncLoad is not safe for concurrent use.
type SyncLoad struct {
	s    *Service
	inst string
	rule SyncRule
	// seen holds the match keys of the users of the load so far (nil:
	// SyncBatch, which may apply a user twice).
	seen map[string]bool
	dry  *dryRun
}

// NewSyncLoad starts a load of users into institution inst by rule.
func (s *Service) NewSyncLoad(inst string, rule SyncRule) *SyncLoad {
	l := &SyncLoad{s: s, inst: inst, rule: rule, seen: map[string]bool{}}
	if rule.DryRun {
		l.dry = newDryRun(false)
	}
	return l
}

// Apply applies the next users of the load, in order, and returns their
// outcomes (see SyncLoad and SyncBatch). The incoming users are changed
// (normalized) in place.
func (l *SyncLoad) Apply(ctx context.Context, in []*User) []SyncResult {
	s, inst, rule := l.s, l.inst, l.rule
	if rule.RecordType == "" {
		rule.RecordType = RecordPublic
	}
	out := make([]SyncResult, len(in))
	hashes := make([]string, len(in))
	var pending []int
	for i, u := range in {
		out[i] = SyncResult{PrimaryID: strings.TrimSpace(u.PrimaryID)}
		normalizeIncoming(inst, u, rule)
		hashes[i] = incomingHash(u, rule)
		if k := matchKey(u, rule); l.seen != nil && k != "" {
			if l.seen[k] {
				out[i].Outcome = OutcomeRejected
				out[i].Reason = fmt.Sprintf("an earlier user of the load has the %s %q: a load applies each user once", matchName(rule), matchValue(u, rule))
				continue
			}
			l.seen[k] = true
		}
		pending = append(pending, i)
	}
	known, err := s.knownHashes(ctx, inst, in, pending, rule)
	if err != nil {
		for _, i := range pending {
			out[i].Outcome, out[i].Reason = OutcomeFailed, err.Error()
		}
		return out
	}
	if l.dry != nil {
		l.dry.adjustKnown(known, in, pending, rule)
	}
	// matched holds the users matched by the users of the batch so far,
	// and taken the keys those users bring: what a user applied later may
	// find changed since the batch was read.
	matched := map[string]bool{}
	taken := map[string]bool{}
	var fresh, rest []int
	for _, i := range pending {
		k, found := known[matchKey(in[i], rule)]
		if reason := staffReason(in[i], found && k.staff, rule); reason != "" {
			out[i].Outcome, out[i].Reason = OutcomeRejected, reason
			continue
		}
		unchanged := found && rule.Mode == ModeSynchronize && hashes[i] != "" && k.hash == hashes[i] && k.external && !matched[k.id]
		if found {
			matched[k.id] = true
		}
		// A record the same as the one applied last time was valid then;
		// any other is checked before it is applied.
		if !unchanged {
			if reason := s.checkIncoming(in[i], rule); reason != "" {
				out[i].Outcome, out[i].Reason = OutcomeRejected, reason
				continue
			}
		}
		keys := keysOf(in[i])
		wanted := slices.ContainsFunc(keys, func(k string) bool { return taken[k] })
		switch {
		case unchanged:
			out[i].Outcome, out[i].UserID = OutcomeUnchanged, k.id
		case !found && !wanted && l.dry == nil && (rule.Mode == ModeImport || rule.Unmatched == UnmatchedAdd):
			// Nobody before it in the batch wants its keys: it may be
			// created with the other new users, ahead of its turn.
			fresh = append(fresh, i)
		default:
			rest = append(rest, i)
		}
		for _, k := range keys {
			taken[k] = true
		}
	}
	rest = append(rest, s.createMany(ctx, inst, in, hashes, fresh, out)...)
	slices.Sort(rest)
	for _, i := range rest {
		out[i] = s.syncOne(ctx, inst, in[i], hashes[i], rule, l.dry)
	}
	return out
}

// keysOf lists the keys a user holds that must be unique: its primary_id
// and its identifiers.
func keysOf(u *User) []string {
	keys := []string{"p\x00" + u.PrimaryIDKey}
	for _, id := range u.Identifiers {
		keys = append(keys, "i\x00"+id.IDType+"\x00"+id.ValueKey)
	}
	return keys
}

// lookups runs the batch reads of a synchronize. On PostgreSQL they run in
// a transaction of their own that plans each statement for its values: a
// prepared statement's generic plan, made while the tables were nearly
// empty, would go on scanning them whole as a first load fills them. The
// setting is LOCAL to that transaction; the host's sessions are untouched.
// Within a transaction ctx carries they run as they are: the setting would
// hold until that transaction's end.
func (s *Service) lookups(ctx context.Context, fn func(db *gorm.DB) error) error {
	db := s.conn(ctx)
	if db.Dialector.Name() != "postgres" || txctx.In(ctx) {
		return fn(db)
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SET LOCAL plan_cache_mode = force_custom_plan").Error; err != nil {
			return err
		}
		return fn(tx)
	})
}

// normalizeIncoming normalizes an incoming user as the SIS's: External
// segments, the profile's external_id, the defaults.
func normalizeIncoming(inst string, u *User, rule SyncRule) {
	u.Institution = inst
	normalizeCore(u)
	u.AccountType, u.ExternalID = AccountExternal, rule.Profile
	keepUnsent(u, &User{RecordType: rule.RecordType, Status: StatusActive})
	eachSegment(u, func(_ string, seg *Segment) { seg.SegmentType, seg.ID = SegmentExternal, "" })
	for i := range u.Notes {
		u.Notes[i].Origin = OriginExternal
		u.Notes[i].CreatedBy = "system:sis:" + rule.Profile
	}
	for i := range u.Blocks {
		if u.Blocks[i].BlockStatus == "" {
			u.Blocks[i].BlockStatus = StatusActive
		}
		u.Blocks[i].CreatedBy = "system:sis:" + rule.Profile
	}
}

// checkIncoming checks a normalized incoming user alone; it returns why the
// user is rejected, or "".
func (s *Service) checkIncoming(u *User, rule SyncRule) string {
	if err := s.validateUser(u, ""); err != nil {
		return reasonOf(err)
	}
	if rule.MatchBy != MatchPrimaryID && identifierOf(u, rule.MatchBy) == nil {
		return fmt.Sprintf("the record has no identifier of type %s, which the profile matches on", rule.MatchBy)
	}
	return ""
}

// staffReason says why an incoming user is rejected when the profile does
// not allow staff records: the user is STAFF, or matches a STAFF record
// (held); "" otherwise.
func staffReason(u *User, held bool, rule SyncRule) string {
	switch {
	case rule.AllowStaff:
		return ""
	case u.RecordType == RecordStaff:
		return fmt.Sprintf("record_type STAFF: profile %s does not allow staff records (allow_staff)", rule.Profile)
	case held:
		return fmt.Sprintf("the %s %q belongs to a staff record, which profile %s does not change: it does not allow staff records (allow_staff)", matchName(rule), matchValue(u, rule), rule.Profile)
	}
	return ""
}

// reasonOf turns a refusal into one line for a run's report.
func reasonOf(err error) string {
	e, ok := fault.As(err)
	if !ok {
		return err.Error()
	}
	var parts []string
	for _, f := range e.Fields {
		parts = append(parts, f.Field+" "+f.Message)
	}
	parts = append(parts, e.Reasons...)
	if len(parts) == 0 {
		return e.Detail
	}
	return strings.Join(parts, "; ")
}

func identifierOf(u *User, idType string) *Identifier {
	for i := range u.Identifiers {
		if u.Identifiers[i].IDType == idType {
			return &u.Identifiers[i]
		}
	}
	return nil
}

// matchKey is the folded value an incoming user is matched on.
func matchKey(u *User, rule SyncRule) string {
	if rule.MatchBy == MatchPrimaryID {
		return u.PrimaryIDKey
	}
	if id := identifierOf(u, rule.MatchBy); id != nil {
		return id.ValueKey
	}
	return ""
}

// incomingHash fingerprints what the SIS sent (after normalization), so
// that the next run can skip a user whose record is the same. A record with
// a PIN gets none: PINs are compared against their slow hash instead.
func incomingHash(u *User, rule SyncRule) string {
	if u.PINNumber != "" {
		return ""
	}
	b, _ := json.Marshal(struct {
		U       *User
		Profile string
	}{u, rule.Profile}) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type knownUser struct {
	id       string
	hash     string
	external bool
	staff    bool
}

// knownHashes reads, in one query, the stored fingerprints of the users
// that the pending incoming users match.
func (s *Service) knownHashes(ctx context.Context, inst string, in []*User, pending []int, rule SyncRule) (map[string]knownUser, error) {
	keys := make([]string, 0, len(pending))
	for _, i := range pending {
		// A key that breaks the text rule names nobody; its user is
		// rejected by the checks that follow, the others go on.
		if k := matchKey(in[i], rule); Findable(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return map[string]knownUser{}, nil
	}
	var rows []struct {
		MatchKey    string
		ID          string
		SISHash     string
		AccountType string
		RecordType  string
	}
	err := s.lookups(ctx, func(db *gorm.DB) error {
		if rule.MatchBy == MatchPrimaryID {
			return db.Model(&User{}).Select("primary_id_key AS match_key, id, sis_hash, account_type, record_type").
				Where("institution = ? AND primary_id_key IN ?", inst, keys).Scan(&rows).Error
		}
		return db.Table("pk_user_identifiers AS i").Joins("JOIN pk_users u ON u.id = i.user_id").
			Select("i.value_key AS match_key, u.id, u.sis_hash, u.account_type, u.record_type").
			Where("i.institution = ? AND i.id_type = ? AND i.value_key IN ?", inst, rule.MatchBy, keys).Scan(&rows).Error
	})
	out := make(map[string]knownUser, len(rows))
	for _, r := range rows {
		out[r.MatchKey] = knownUser{id: r.ID, hash: r.SISHash, external: r.AccountType == AccountExternal, staff: r.RecordType == RecordStaff}
	}
	return out, err
}

// syncOne applies one prepared incoming user in a transaction of its own.
// In a dry run (dry not nil) the transaction is rolled back and dry notes
// what the user would have changed.
func (s *Service) syncOne(ctx context.Context, inst string, u *User, hash string, rule SyncRule, dry *dryRun) SyncResult {
	res := SyncResult{PrimaryID: u.PrimaryID}
	var before, after *User
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, reason, err := s.matchIncoming(tx, inst, u, rule, dry)
		if err != nil {
			return err
		}
		if reason != "" {
			res.Outcome, res.Reason = OutcomeRejected, reason
			return nil
		}
		if cur == nil {
			return s.syncCreate(ctx, tx, inst, u, hash, rule, dry, &res, &after)
		}
		before = cloneUser(cur)
		return s.syncUpdate(ctx, tx, inst, cur, u, hash, rule, dry, &res, &after)
	})
	if rule.DryRun && errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		if e, ok := fault.As(s.translate(err)); ok && e.Kind != fault.Stale {
			return SyncResult{PrimaryID: u.PrimaryID, Outcome: OutcomeRejected, Reason: reasonOf(e)}
		}
		return SyncResult{PrimaryID: u.PrimaryID, Outcome: OutcomeFailed, Reason: err.Error()}
	}
	if rule.DryRun {
		if dry != nil {
			dry.record(before, after, hash, rule)
		}
		return res
	}
	if after == nil {
		return res
	}
	out := s.finishRead(after)
	switch res.Outcome {
	case OutcomeCreated:
		s.changed(ctx, Change{Institution: inst, Action: Created, After: out})
		s.emit(ctx, inst, AuditCreate, out.PrimaryID, "user")
	case OutcomeUpdated:
		s.changed(ctx, Change{Institution: inst, Action: Updated, Before: s.finishRead(before), After: out})
		s.emit(ctx, inst, AuditUpdate, out.PrimaryID, "user")
	}
	return res
}

// matchIncoming finds the external user an incoming user matches, or nil.
// A reason is returned when the incoming user must be rejected.
func (s *Service) matchIncoming(tx *gorm.DB, inst string, u *User, rule SyncRule, dry *dryRun) (*User, string, error) {
	cur, decided, err := dry.match(u, rule)
	if err != nil {
		return nil, "", err
	}
	switch {
	case decided:
		// The users before it in the dry run touched the key.
	case rule.MatchBy == MatchPrimaryID:
		found, err := loadUser(tx, inst, u.PrimaryID)
		if err != nil && !errors.Is(err, fault.ErrNotFound) {
			return nil, "", err
		}
		cur = found
	default:
		id := identifierOf(u, rule.MatchBy)
		var held Identifier
		err := tx.Where("institution = ? AND id_type = ? AND value_key = ?", inst, id.IDType, id.ValueKey).Take(&held).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
		case err != nil:
			return nil, "", err
		default:
			if cur, err = loadUserByID(tx, inst, held.UserID); err != nil {
				return nil, "", err
			}
		}
	}
	if cur != nil && !cur.IsExternal() {
		return nil, fmt.Sprintf("the %s %q belongs to internal user %q, which a synchronize never changes", matchName(rule), matchValue(u, rule), cur.PrimaryID), nil
	}
	if reason := staffReason(u, cur != nil && cur.RecordType == RecordStaff, rule); reason != "" {
		return nil, reason, nil
	}
	if cur != nil && rule.Mode == ModeImport {
		return nil, fmt.Sprintf("user %q exists already; an import adds new users only", cur.PrimaryID), nil
	}
	if cur == nil && rule.Mode == ModeSynchronize && rule.Unmatched == UnmatchedReject {
		return nil, fmt.Sprintf("no external user has the %s %q, and the profile rejects unmatched users", matchName(rule), matchValue(u, rule)), nil
	}
	return cur, "", nil
}

func matchName(rule SyncRule) string {
	if rule.MatchBy == MatchPrimaryID {
		return "primary_id"
	}
	return "identifier " + rule.MatchBy
}

func matchValue(u *User, rule SyncRule) string {
	if rule.MatchBy == MatchPrimaryID {
		return u.PrimaryID
	}
	return identifierOf(u, rule.MatchBy).Value
}

func (s *Service) syncCreate(ctx context.Context, tx *gorm.DB, inst string, u *User, hash string, rule SyncRule, dry *dryRun, res *SyncResult, after **User) error {
	if err := dry.primaryIDFree(tx, inst, u.PrimaryIDKey, ""); err != nil {
		return err
	}
	if err := dry.identifiersFree(tx, inst, u.Identifiers, ""); err != nil {
		return err
	}
	if err := dry.free(tx, inst, u); err != nil {
		return err
	}
	if u.PINNumber != "" {
		h, err := s.hashPIN(u.PINNumber)
		if err != nil {
			return err
		}
		u.PINHash, u.PINNumber = h, ""
	}
	now := s.clock()
	u.ID, u.Version, u.CreatedAt, u.UpdatedAt, u.SISHash = keys.NewID(), 1, now, now, hash
	stampSIS(u, now)
	if err := tx.Omit(segmentAssociations...).Create(u).Error; err != nil {
		return err
	}
	if err := insertSegments(tx, u, "", nil); err != nil {
		return err
	}
	res.Outcome, res.UserID = OutcomeCreated, u.ID
	*after = u
	if rule.DryRun {
		return errDryRun
	}
	return nil
}

// stampSIS dates the notes and blocks an SIS sent.
func stampSIS(u *User, now time.Time) {
	for i := range u.Notes {
		u.Notes[i].CreatedDate = now
	}
	for i := range u.Blocks {
		u.Blocks[i].CreatedDate = now
	}
}

func (s *Service) syncUpdate(ctx context.Context, tx *gorm.DB, inst string, cur, in *User, hash string, rule SyncRule, dry *dryRun, res *SyncResult, after **User) error {
	var overrides []FieldOverride
	if err := tx.Where("user_id = ?", cur.ID).Find(&overrides).Error; err != nil {
		return err
	}
	overridden := map[string]bool{}
	for _, o := range overrides {
		overridden[o.Field] = true
	}
	m, err := s.mergeIncoming(cur, in, overridden)
	if err != nil {
		return err
	}
	res.UserID = cur.ID
	res.Changes = syncChanges(cur, m)
	if len(res.Changes) == 0 {
		res.Outcome = OutcomeUnchanged
		if cur.SISHash == hash {
			return nil
		}
		if rule.DryRun {
			held := cloneUser(cur)
			held.SISHash = hash
			*after = held
			return nil
		}
		// Remember the fingerprint, so that the next run skips the user.
		return tx.Model(&User{}).Where("id = ?", cur.ID).Update("sis_hash", hash).Error
	}
	if err := s.validateUser(m, cur.PrimaryID); err != nil {
		return err
	}
	if m.PrimaryIDKey != cur.PrimaryIDKey {
		if err := dry.primaryIDFree(tx, inst, m.PrimaryIDKey, cur.ID); err != nil {
			return err
		}
	}
	if err := dry.identifiersFree(tx, inst, m.Identifiers, cur.ID); err != nil {
		return err
	}
	now := s.clock()
	m.Version, m.UpdatedAt, m.SISHash = cur.Version+1, now, hash
	if dry.virtual(cur) {
		// A user an earlier user of the dry run created or changed: the
		// stored record is not what this one would change.
		keepHeld(m, cur, changedKinds(res.Changes))
		res.Outcome, *after = OutcomeUpdated, m
		return errDryRun
	}
	if err := dry.free(tx, inst, m); err != nil {
		return err
	}
	if err := saveCore(tx, m, cur.Version); err != nil {
		return err
	}
	// Rewrite the segment lists that changed, whole: the External entries
	// swapped, and Internal ones whose preferred flags gave way.
	kinds := changedKinds(res.Changes)
	for _, kind := range SegmentKinds {
		if !kinds[kind] {
			continue
		}
		if err := tx.Where("user_id = ?", cur.ID).Delete(segmentModelOf[kind]).Error; err != nil {
			return err
		}
	}
	keepHeld(m, cur, kinds)
	held := map[string]bool{}
	eachSegment(cur, func(_ string, seg *Segment) { held[seg.ID] = true })
	if err := insertSegmentKinds(tx, m, "", held, kinds); err != nil {
		return err
	}
	res.Outcome = OutcomeUpdated
	m.PrimaryIDKey = keys.Fold(m.PrimaryID)
	*after = m
	if rule.DryRun {
		return errDryRun
	}
	return nil
}

// changedKinds picks the segment kinds out of the changes of an update.
func changedKinds(changes []string) map[string]bool {
	kinds := map[string]bool{}
	for _, c := range changes {
		if _, ok := segmentModelOf[c]; ok {
			kinds[c] = true
		}
	}
	return kinds
}
