package patron

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
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
// The incoming users are changed (normalized) in place.
//
// Matching looks among all external users of the institution, whatever
// profile made them; internal users are never matched, and an incoming
// user that collides with one is rejected. On a match, core fields are
// replaced except the retained ones that staff changed by hand or that the
// incoming record leaves empty; the user's External segments are replaced
// by the incoming ones and Internal segments stay.
func (s *Service) SyncBatch(ctx context.Context, inst string, in []*User, rule SyncRule) []SyncResult {
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
		pending = append(pending, i)
	}
	known, err := s.knownHashes(ctx, inst, in, pending, rule)
	if err != nil {
		for _, i := range pending {
			out[i].Outcome, out[i].Reason = OutcomeFailed, err.Error()
		}
		return out
	}
	var fresh, rest []int
	for _, i := range pending {
		k, matched := known[matchKey(in[i], rule)]
		unchanged := matched && rule.Mode == ModeSynchronize && hashes[i] != "" && k.hash == hashes[i] && k.external
		// A record the same as the one applied last time was valid then;
		// any other is checked before it is applied.
		if !unchanged {
			if reason := s.checkIncoming(in[i], rule); reason != "" {
				out[i].Outcome, out[i].Reason = OutcomeRejected, reason
				continue
			}
		}
		switch {
		case unchanged:
			out[i].Outcome, out[i].UserID = OutcomeUnchanged, k.id
		case !matched && !rule.DryRun && (rule.Mode == ModeImport || rule.Unmatched == UnmatchedAdd):
			fresh = append(fresh, i)
		default:
			rest = append(rest, i)
		}
	}
	rest = append(rest, s.createMany(ctx, inst, in, hashes, fresh, out)...)
	slices.Sort(rest)
	for _, i := range rest {
		out[i] = s.syncOne(ctx, inst, in[i], hashes[i], rule)
	}
	return out
}

// createMany adds, in one transaction, the new users of a batch that
// collide with nothing held and with no other user of the batch. It returns
// the ones it left for the one-by-one path: those that collide (so that
// their rejection gives the reason) or all of them when the transaction
// fails, since each user must be applied whole or not at all.
func (s *Service) createMany(ctx context.Context, inst string, in []*User, hashes []string, fresh []int, out []SyncResult) []int {
	if len(fresh) == 0 {
		return nil
	}
	var left, take []int
	pids := map[string]bool{}
	ids := map[[2]string]bool{}
	var pidKeys, idTypes, idKeys []string
	for _, i := range fresh {
		pidKeys = append(pidKeys, in[i].PrimaryIDKey)
		for _, id := range in[i].Identifiers {
			if !slices.Contains(idTypes, id.IDType) {
				idTypes = append(idTypes, id.IDType)
			}
			idKeys = append(idKeys, id.ValueKey)
		}
	}
	db := s.db.WithContext(ctx)
	var heldPIDs []string
	var heldIDs []struct{ IDType, ValueKey string }
	err := s.lookups(ctx, func(db *gorm.DB) error {
		if err := db.Model(&User{}).Where("institution = ? AND primary_id_key IN ?", inst, pidKeys).Pluck("primary_id_key", &heldPIDs).Error; err != nil {
			return err
		}
		if len(idKeys) == 0 {
			return nil
		}
		return db.Model(&Identifier{}).Select("id_type, value_key").Where("institution = ? AND id_type IN ? AND value_key IN ?", inst, idTypes, idKeys).Scan(&heldIDs).Error
	})
	if err != nil {
		s.log.Warn("patron: bulk create: reading held primary ids and identifiers", "error", err)
		return fresh
	}
	for _, k := range heldPIDs {
		pids[k] = true
	}
	for _, h := range heldIDs {
		ids[[2]string{h.IDType, h.ValueKey}] = true
	}
	for _, i := range fresh {
		u := in[i]
		clash := pids[u.PrimaryIDKey]
		for _, id := range u.Identifiers {
			clash = clash || ids[[2]string{id.IDType, id.ValueKey}]
		}
		if clash {
			left = append(left, i)
			continue
		}
		pids[u.PrimaryIDKey] = true
		for _, id := range u.Identifiers {
			ids[[2]string{id.IDType, id.ValueKey}] = true
		}
		take = append(take, i)
	}
	if len(take) == 0 {
		return left
	}
	now := s.clock()
	users := make([]*User, 0, len(take))
	for _, i := range take {
		u := in[i]
		if u.PINNumber != "" {
			h, err := s.hashPIN(u.PINNumber)
			if err != nil {
				return fresh
			}
			u.PINHash, u.PINNumber = h, ""
		}
		u.ID, u.Version, u.CreatedAt, u.UpdatedAt, u.SISHash = newID(), 1, now, now, hashes[i]
		stampSIS(u, now)
		eachSegment(u, func(_ string, seg *Segment) { seg.ID, seg.UserID = newID(), u.ID })
		users = append(users, u)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Omit(segmentAssociations...).CreateInBatches(users, 100).Error; err != nil {
			return err
		}
		return firstErr(
			insertAll(tx, users, func(u *User) []Identifier { return u.Identifiers }),
			insertAll(tx, users, func(u *User) []Address { return u.Addresses }),
			insertAll(tx, users, func(u *User) []Email { return u.Emails }),
			insertAll(tx, users, func(u *User) []Phone { return u.Phones }),
			insertAll(tx, users, func(u *User) []Note { return u.Notes }),
			insertAll(tx, users, func(u *User) []Block { return u.Blocks }),
			insertAll(tx, users, func(u *User) []Statistic { return u.Statistics }),
			insertAll(tx, users, func(u *User) []ProxyFor { return u.ProxyFor }),
		)
	})
	if err != nil {
		// A write of another process came between: apply them one by one.
		s.log.Info("patron: bulk create fell back to one user at a time", "users", len(users), "error", err)
		for _, u := range users {
			u.ID = ""
		}
		return fresh
	}
	for _, i := range take {
		u := in[i]
		out[i] = SyncResult{PrimaryID: u.PrimaryID, Outcome: OutcomeCreated, UserID: u.ID}
		created := s.finishRead(u)
		s.changed(ctx, Change{Institution: inst, Action: Created, After: created})
		s.emit(ctx, inst, AuditCreate, u.PrimaryID, "user")
	}
	return left
}

// insertAll writes one segment list of many users in multi-row inserts.
func insertAll[T any](tx *gorm.DB, users []*User, list func(*User) []T) func() error {
	return func() error {
		var rows []T
		for _, u := range users {
			rows = append(rows, list(u)...)
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.CreateInBatches(rows, 500).Error
	}
}

// lookups runs the batch reads of a synchronize. On PostgreSQL they run in
// a transaction of their own that plans each statement for its values: a
// prepared statement's generic plan, made while the tables were nearly
// empty, would go on scanning them whole as a first load fills them. The
// setting is LOCAL to that transaction; the host's sessions are untouched.
func (s *Service) lookups(ctx context.Context, fn func(db *gorm.DB) error) error {
	db := s.db.WithContext(ctx)
	if db.Dialector.Name() != "postgres" {
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
	if err := s.validateUser(u); err != nil {
		return reasonOf(err)
	}
	if rule.MatchBy != MatchPrimaryID && identifierOf(u, rule.MatchBy) == nil {
		return fmt.Sprintf("the record has no identifier of type %s, which the profile matches on", rule.MatchBy)
	}
	return ""
}

// reasonOf turns a refusal into one line for a run's report.
func reasonOf(err error) string {
	e, ok := AsError(err)
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
}

// knownHashes reads, in one query, the stored fingerprints of the users
// that the pending incoming users match.
func (s *Service) knownHashes(ctx context.Context, inst string, in []*User, pending []int, rule SyncRule) (map[string]knownUser, error) {
	keys := make([]string, 0, len(pending))
	for _, i := range pending {
		keys = append(keys, matchKey(in[i], rule))
	}
	if len(keys) == 0 {
		return map[string]knownUser{}, nil
	}
	var rows []struct {
		MatchKey    string
		ID          string
		SISHash     string
		AccountType string
	}
	err := s.lookups(ctx, func(db *gorm.DB) error {
		if rule.MatchBy == MatchPrimaryID {
			return db.Model(&User{}).Select("primary_id_key AS match_key, id, sis_hash, account_type").
				Where("institution = ? AND primary_id_key IN ?", inst, keys).Scan(&rows).Error
		}
		return db.Table("pk_user_identifiers AS i").Joins("JOIN pk_users u ON u.id = i.user_id").
			Select("i.value_key AS match_key, u.id, u.sis_hash, u.account_type").
			Where("i.institution = ? AND i.id_type = ? AND i.value_key IN ?", inst, rule.MatchBy, keys).Scan(&rows).Error
	})
	out := make(map[string]knownUser, len(rows))
	for _, r := range rows {
		out[r.MatchKey] = knownUser{id: r.ID, hash: r.SISHash, external: r.AccountType == AccountExternal}
	}
	return out, err
}

// syncOne applies one prepared incoming user in a transaction of its own.
func (s *Service) syncOne(ctx context.Context, inst string, u *User, hash string, rule SyncRule) SyncResult {
	res := SyncResult{PrimaryID: u.PrimaryID}
	var before, after *User
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, reason, err := s.matchIncoming(tx, inst, u, rule)
		if err != nil {
			return err
		}
		if reason != "" {
			res.Outcome, res.Reason = OutcomeRejected, reason
			return nil
		}
		if cur == nil {
			return s.syncCreate(ctx, tx, inst, u, hash, rule, &res, &after)
		}
		before = cloneUser(cur)
		return s.syncUpdate(ctx, tx, inst, cur, u, hash, rule, &res, &after)
	})
	if rule.DryRun && errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		if e, ok := AsError(s.translate(err)); ok && e.Kind != Stale {
			return SyncResult{PrimaryID: u.PrimaryID, Outcome: OutcomeRejected, Reason: reasonOf(e)}
		}
		return SyncResult{PrimaryID: u.PrimaryID, Outcome: OutcomeFailed, Reason: err.Error()}
	}
	if rule.DryRun || after == nil {
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
func (s *Service) matchIncoming(tx *gorm.DB, inst string, u *User, rule SyncRule) (*User, string, error) {
	var cur *User
	if rule.MatchBy == MatchPrimaryID {
		found, err := loadUser(tx, inst, u.PrimaryID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, "", err
		}
		cur = found
	} else {
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

func (s *Service) syncCreate(ctx context.Context, tx *gorm.DB, inst string, u *User, hash string, rule SyncRule, res *SyncResult, after **User) error {
	if err := checkPrimaryIDFree(tx, inst, u.PrimaryIDKey, ""); err != nil {
		return err
	}
	if err := checkIdentifiersFree(tx, inst, u.Identifiers, ""); err != nil {
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
	u.ID, u.Version, u.CreatedAt, u.UpdatedAt, u.SISHash = newID(), 1, now, now, hash
	stampSIS(u, now)
	if err := tx.Omit(segmentAssociations...).Create(u).Error; err != nil {
		return err
	}
	if err := insertSegments(tx, u, "", nil); err != nil {
		return err
	}
	res.Outcome, res.UserID = OutcomeCreated, u.ID
	if rule.DryRun {
		return errDryRun
	}
	*after = u
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

func (s *Service) syncUpdate(ctx context.Context, tx *gorm.DB, inst string, cur, in *User, hash string, rule SyncRule, res *SyncResult, after **User) error {
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
		if rule.DryRun || cur.SISHash == hash {
			return nil
		}
		// Remember the fingerprint, so that the next run skips the user.
		return tx.Model(&User{}).Where("id = ?", cur.ID).Update("sis_hash", hash).Error
	}
	if err := s.validateUser(m); err != nil {
		return err
	}
	if m.PrimaryIDKey != cur.PrimaryIDKey {
		if err := checkPrimaryIDFree(tx, inst, m.PrimaryIDKey, cur.ID); err != nil {
			return err
		}
	}
	if err := checkIdentifiersFree(tx, inst, m.Identifiers, cur.ID); err != nil {
		return err
	}
	now := s.clock()
	m.Version, m.UpdatedAt, m.SISHash = cur.Version+1, now, hash
	if err := saveCore(tx, m, cur.Version); err != nil {
		return err
	}
	// Rewrite the segment lists that changed, whole: the External entries
	// swapped, and Internal ones whose preferred flags gave way.
	kinds := map[string]bool{}
	for _, c := range res.Changes {
		if model, ok := segmentModelOf[c]; ok {
			kinds[c] = true
			if err := tx.Where("user_id = ?", cur.ID).Delete(model).Error; err != nil {
				return err
			}
		}
	}
	keepHeld(m, cur, kinds)
	held := map[string]bool{}
	eachSegment(cur, func(_ string, seg *Segment) { held[seg.ID] = true })
	if err := insertSegmentKinds(tx, m, "", held, kinds); err != nil {
		return err
	}
	res.Outcome = OutcomeUpdated
	if rule.DryRun {
		return errDryRun
	}
	m.PrimaryIDKey = foldKey(m.PrimaryID)
	*after = m
	return nil
}

// keepHeld gives m the held lists of the segment kinds not in changed: the
// rows stay as they are, ids included.
func keepHeld(m, cur *User, changed map[string]bool) {
	if !changed[KindIdentifiers] {
		m.Identifiers = cur.Identifiers
	}
	if !changed[KindAddresses] {
		m.Addresses = cur.Addresses
	}
	if !changed[KindEmails] {
		m.Emails = cur.Emails
	}
	if !changed[KindPhones] {
		m.Phones = cur.Phones
	}
	if !changed[KindNotes] {
		m.Notes = cur.Notes
	}
	if !changed[KindBlocks] {
		m.Blocks = cur.Blocks
	}
	if !changed[KindStatistics] {
		m.Statistics = cur.Statistics
	}
	if !changed[KindProxyFor] {
		m.ProxyFor = cur.ProxyFor
	}
}

// mergeIncoming builds the record a synchronize leaves: the incoming core
// fields but the retained ones staff changed by hand (or that arrive
// empty), the incoming External segments, and the Internal segments held.
func (s *Service) mergeIncoming(cur, in *User, overridden map[string]bool) (*User, error) {
	m := *in
	m.ID, m.Institution, m.CreatedAt, m.Version = cur.ID, cur.Institution, cur.CreatedAt, cur.Version
	keep := func(field string, held string, incoming *string) {
		if overridden[field] || *incoming == "" {
			*incoming = held
		}
	}
	keep("user_group", cur.UserGroup, &m.UserGroup)
	keep("job_category", cur.JobCategory, &m.JobCategory)
	keep("preferred_language", cur.PreferredLanguage, &m.PreferredLanguage)
	keep("campus_code", cur.CampusCode, &m.CampusCode)
	keep("rs_library", cur.RSLibrary, &m.RSLibrary)
	m.PINHash = cur.PINHash
	if in.PINNumber != "" && !overridden["pin_number"] && !s.pinMatches(cur.PINHash, in.PINNumber) {
		h, err := s.hashPIN(in.PINNumber)
		if err != nil {
			return nil, err
		}
		m.PINHash = h
	}
	m.PINNumber = ""
	now := s.clock()
	stampSIS(&m, now)
	// Keep the dates of notes and blocks the SIS sent before.
	keepSISDates(&m, cur)
	// An identifier the SIS now sends replaces the library's own copy.
	sent := map[[2]string]bool{}
	for _, id := range m.Identifiers {
		sent[[2]string{id.IDType, id.ValueKey}] = true
	}
	m.Identifiers = slices.Clone(m.Identifiers)
	for _, id := range internalOf(cur.Identifiers) {
		if !sent[[2]string{id.IDType, id.ValueKey}] {
			m.Identifiers = append(m.Identifiers, id)
		}
	}
	m.Addresses = append(slices.Clone(m.Addresses), internalOf(cur.Addresses)...)
	m.Emails = append(slices.Clone(m.Emails), internalOf(cur.Emails)...)
	m.Phones = append(slices.Clone(m.Phones), internalOf(cur.Phones)...)
	m.Notes = append(slices.Clone(m.Notes), internalOf(cur.Notes)...)
	m.Blocks = append(slices.Clone(m.Blocks), internalOf(cur.Blocks)...)
	m.Statistics = append(slices.Clone(m.Statistics), internalOf(cur.Statistics)...)
	m.ProxyFor = append(slices.Clone(m.ProxyFor), internalOf(cur.ProxyFor)...)
	// The SIS says which contact is preferred when it says so at all.
	sisPrefers(m.Emails, func(e *Email) *bool { return &e.Preferred })
	sisPrefers(m.Phones, func(p *Phone) *bool { return &p.Preferred })
	sisPrefers(m.Phones, func(p *Phone) *bool { return &p.PreferredSMS })
	sisPrefers(m.Addresses, func(a *Address) *bool { return &a.Preferred })
	return &m, nil
}

func internalOf[T segmentRow](list []T) []T {
	var out []T
	for _, x := range list {
		if !x.segment().IsExternal() {
			out = append(out, x)
		}
	}
	return out
}

// sisPrefers clears the flag on Internal entries when an External one has
// it: at most one entry of a kind is preferred.
func sisPrefers[T segmentRow](list []T, flag func(*T) *bool) {
	sis := false
	for i := range list {
		if list[i].segment().IsExternal() && *flag(&list[i]) {
			sis = true
		}
	}
	if !sis {
		return
	}
	for i := range list {
		if !list[i].segment().IsExternal() {
			*flag(&list[i]) = false
		}
	}
}

// keepSISDates gives incoming notes and blocks that the SIS sent before the
// dates they were first received.
func keepSISDates(m, cur *User) {
	noteDates := map[string][]int{}
	for i, n := range cur.Notes {
		if n.IsExternal() {
			noteDates[n.NoteType+"\x00"+n.NoteText] = append(noteDates[n.NoteType+"\x00"+n.NoteText], i)
		}
	}
	for i := range m.Notes {
		k := m.Notes[i].NoteType + "\x00" + m.Notes[i].NoteText
		if idx := noteDates[k]; len(idx) > 0 {
			m.Notes[i].CreatedDate, noteDates[k] = cur.Notes[idx[0]].CreatedDate, idx[1:]
		}
	}
	blockDates := map[string][]int{}
	for i, b := range cur.Blocks {
		if b.IsExternal() {
			blockDates[b.BlockType+"\x00"+b.BlockDescription] = append(blockDates[b.BlockType+"\x00"+b.BlockDescription], i)
		}
	}
	for i := range m.Blocks {
		k := m.Blocks[i].BlockType + "\x00" + m.Blocks[i].BlockDescription
		if idx := blockDates[k]; len(idx) > 0 {
			m.Blocks[i].CreatedDate, blockDates[k] = cur.Blocks[idx[0]].CreatedDate, idx[1:]
		}
	}
}

// syncChanges names what differs between the held record and the merged
// one: core fields by JSON name, segment lists by kind.
func syncChanges(cur, m *User) []string {
	var out []string
	a, b := coreMap(cur), coreMap(m)
	for k, v := range b {
		if a[k] != v {
			out = append(out, k)
		}
	}
	if cur.PINHash != m.PINHash {
		out = append(out, "pin_number")
	}
	ka, kb := segmentPrints(cur), segmentPrints(m)
	for _, kind := range SegmentKinds {
		if !slices.Equal(ka[kind], kb[kind]) {
			out = append(out, kind)
		}
	}
	sort.Strings(out)
	return out
}

// coreMap is the core fields of u by JSON name, as text.
func coreMap(u *User) map[string]string {
	c := *u
	c.Identifiers, c.Addresses, c.Emails, c.Phones, c.Notes, c.Blocks, c.Statistics, c.ProxyFor = nil, nil, nil, nil, nil, nil, nil, nil
	c.Version, c.Warnings = 0, nil
	c.CreatedAt, c.UpdatedAt = time.Time{}, time.Time{}
	b, _ := json.Marshal(c)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == "created_date" || k == "updated_date" || k == "version" {
			continue
		}
		out[k] = fmt.Sprint(v)
	}
	return out
}

// segmentPrints lists, per kind, the content of each segment (without ids
// and dates), sorted: two users with the same prints hold the same
// segments.
func segmentPrints(u *User) map[string][]string {
	c := cloneUser(u)
	eachSegment(c, func(_ string, seg *Segment) { seg.ID, seg.UserID = "", "" })
	out := map[string][]string{}
	add := func(kind string, v any) {
		b, _ := json.Marshal(v) // plain data: cannot fail
		out[kind] = append(out[kind], string(b))
	}
	for _, x := range c.Identifiers {
		add(KindIdentifiers, x)
	}
	for _, x := range c.Addresses {
		add(KindAddresses, x)
	}
	for _, x := range c.Emails {
		add(KindEmails, x)
	}
	for _, x := range c.Phones {
		add(KindPhones, x)
	}
	for _, x := range c.Notes {
		x.CreatedDate = time.Time{}
		add(KindNotes, x)
	}
	for _, x := range c.Blocks {
		x.CreatedDate = time.Time{}
		add(KindBlocks, x)
	}
	for _, x := range c.Statistics {
		add(KindStatistics, x)
	}
	for _, x := range c.ProxyFor {
		add(KindProxyFor, x)
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

// DeactivateMissing makes INACTIVE the active external users of a profile
// whose internal ids are not in seen: the users a full, clean synchronize
// did not find in the SIS's file. It returns how many it changed.
func (s *Service) DeactivateMissing(ctx context.Context, inst, profile string, seen map[string]bool) (int, error) {
	var ids []string
	db := s.db.WithContext(ctx)
	err := db.Model(&User{}).Where("institution = ? AND external_id = ? AND account_type = ? AND status = ?", inst, profile, AccountExternal, StatusActive).
		Pluck("id", &ids).Error
	if err != nil {
		return 0, err
	}
	var gone []string
	for _, id := range ids {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	for chunk := range slices.Chunk(gone, 500) {
		err := db.Model(&User{}).Where("id IN ? AND status = ?", chunk, StatusActive).
			Updates(map[string]any{"status": StatusInactive, "version": gorm.Expr("version + 1"), "updated_at": s.clock()}).Error
		if err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}

// RestoreSISFields hands retained fields of an external user back to the
// SIS: the manual changes of those fields are forgotten, and the next
// synchronize sets them from the SIS's record again. fields names retained
// fields (see RetainedFields); none means all of them. It returns the
// fields that were held by hand.
func (s *Service) RestoreSISFields(ctx context.Context, inst, primaryID string, fields []string) ([]string, error) {
	var bad []FieldError
	for i, f := range fields {
		if !slices.Contains(RetainedFields, f) {
			bad = append(bad, FieldError{Field: fmt.Sprintf("fields[%d]", i), Code: "unknown_value", Message: "must be one of: " + strings.Join(RetainedFields, ", ")})
		}
	}
	if len(bad) > 0 {
		return nil, invalid(bad...)
	}
	if len(fields) == 0 {
		fields = RetainedFields
	}
	var restored []string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		u, err := loadUser(tx, inst, primaryID)
		if err != nil {
			return err
		}
		if !u.IsExternal() {
			return &Error{Kind: Refused, Detail: "only an external user's fields come from the SIS", Reasons: []string{fmt.Sprintf("user %q is internal", u.PrimaryID)}}
		}
		if err := tx.Model(&FieldOverride{}).Where("user_id = ? AND field IN ?", u.ID, fields).Pluck("field", &restored).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ? AND field IN ?", u.ID, fields).Delete(&FieldOverride{}).Error; err != nil {
			return err
		}
		// Forget the fingerprint: the next synchronize applies the record
		// even when the SIS sends it unchanged.
		return tx.Model(&User{}).Where("id = ?", u.ID).Update("sis_hash", "").Error
	})
	if err != nil {
		return nil, s.translate(err)
	}
	sort.Strings(restored)
	s.emit(ctx, inst, AuditUpdate, primaryID, "field provenance")
	return restored, nil
}

// EachOfProfile calls fn with every user whose external_id names profile,
// whole with segments, in a stable order, reading them a page at a time.
// Each user read is audited as exported.
func (s *Service) EachOfProfile(ctx context.Context, inst, profile string, fn func(*User) error) error {
	db := s.db.WithContext(ctx)
	last := ""
	for {
		var page []User
		err := db.Where("institution = ? AND external_id = ? AND id > ?", inst, profile, last).Order("id").Limit(200).Find(&page).Error
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		if err := loadSegmentsOf(db, page); err != nil {
			return err
		}
		for i := range page {
			u := s.finishRead(&page[i])
			s.emit(ctx, inst, AuditExport, u.PrimaryID, "user")
			if err := fn(u); err != nil {
				return err
			}
		}
		last = page[len(page)-1].ID
	}
}

// loadSegmentsOf fills the segment lists of a page of users, one query per
// kind of segment.
func loadSegmentsOf(db *gorm.DB, users []User) error {
	ids := make([]string, len(users))
	at := make(map[string]*User, len(users))
	for i := range users {
		ids[i] = users[i].ID
		at[users[i].ID] = &users[i]
	}
	return firstErr(
		spread(db, ids, at, func(u *User, x Identifier) { u.Identifiers = append(u.Identifiers, x) }),
		spread(db, ids, at, func(u *User, x Address) { u.Addresses = append(u.Addresses, x) }),
		spread(db, ids, at, func(u *User, x Email) { u.Emails = append(u.Emails, x) }),
		spread(db, ids, at, func(u *User, x Phone) { u.Phones = append(u.Phones, x) }),
		spread(db, ids, at, func(u *User, x Note) { u.Notes = append(u.Notes, x) }),
		spread(db, ids, at, func(u *User, x Block) { u.Blocks = append(u.Blocks, x) }),
		spread(db, ids, at, func(u *User, x Statistic) { u.Statistics = append(u.Statistics, x) }),
		spread(db, ids, at, func(u *User, x ProxyFor) { u.ProxyFor = append(u.ProxyFor, x) }),
	)
}

func spread[T segmentRow](db *gorm.DB, ids []string, at map[string]*User, add func(*User, T)) func() error {
	return func() error {
		var rows []T
		if err := db.Where("user_id IN ?", ids).Order("id").Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			if u := at[r.segment().UserID]; u != nil {
				add(u, r)
			}
		}
		return nil
	}
}
