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

var errDryRun = errors.New("dry run: roll back")

// ApplyExternal applies incoming external users (an SIS's records), in
// order, as how says. Each user is applied whole or not at all; a user
// whose record is the same as the last one applied is skipped without
// being read whole, and the users that match nobody are created together,
// a batch at a time: give it many users at once. The incoming users are
// changed (normalized) in place. What happens to each user is what would
// happen if the users were applied one after the other, in order: a user
// that takes a primary_id or an identifier an earlier user took is
// refused, one that takes what an earlier user gave up is applied; a dry
// run (how.DryRun) gives the same effects. To apply a file in several
// calls, use an ExternalLoad.
//
// Matching (how.Match) looks among all external users of the institution,
// whoever owns them; internal users are never matched, and an incoming
// user that collides with one is refused. On a match, core fields are
// replaced except the retained ones that staff changed by hand or that the
// incoming record leaves empty; the user's External segments are replaced
// by the incoming ones and Internal segments stay.
func (s *Service) ApplyExternal(ctx context.Context, inst string, in []*User, how ExternalApply) []Applied {
	l := &ExternalLoad{s: s, inst: inst, rule: how}
	if how.DryRun {
		l.dry = newDryRun(true)
	}
	return l.Apply(ctx, in)
}

// An ExternalLoad applies the users of one load (an SIS file, a run of an
// integration profile) in batches, as ApplyExternal does, each batch after
// the users of the batches before: what happens to each user is what would
// happen if the whole load were applied one user after the other. A dry
// run (how.DryRun) writes nothing and gives, user by user, the effects the
// load gives: a user that takes a primary_id or identifier an earlier user
// of the load took is refused, and one that takes what an earlier user
// gave up is applied, as in the load itself.
//
// A load applies each user once: a user with the same match key as an
// earlier user of the load (the same primary_id or identifier, whatever
// its case) is refused. An ExternalLoad is not safe for concurrent use.
type ExternalLoad struct {
	s    *Service
	inst string
	rule ExternalApply
	// seen holds the match keys of the users of the load so far (nil:
	// ApplyExternal, which may apply a user twice).
	seen map[string]bool
	dry  *dryRun
}

// NewExternalLoad starts a load of external users into institution inst,
// applied as how says.
func (s *Service) NewExternalLoad(inst string, how ExternalApply) *ExternalLoad {
	l := &ExternalLoad{s: s, inst: inst, rule: how, seen: map[string]bool{}}
	if how.DryRun {
		l.dry = newDryRun(false)
	}
	return l
}

// Apply applies the next users of the load, in order, and returns what
// happened to each (see ExternalLoad and ApplyExternal). The incoming users
// are changed (normalized) in place.
func (l *ExternalLoad) Apply(ctx context.Context, in []*User) []Applied {
	s, inst, rule := l.s, l.inst, l.rule
	if rule.RecordType == "" {
		rule.RecordType = RecordPublic
	}
	out := make([]Applied, len(in))
	hashes := make([]string, len(in))
	var pending []int
	for i, u := range in {
		out[i] = Applied{PrimaryID: strings.TrimSpace(u.PrimaryID)}
		normalizeIncoming(inst, u, rule)
		hashes[i] = incomingHash(u, rule)
		if k := rule.Match.Of(u); l.seen != nil && k != "" {
			if l.seen[k] {
				out[i].Effect = EffectRefused
				out[i].Reason = fmt.Sprintf("an earlier user of the load has the %s %q: a load applies each user once", rule.Match, rule.Match.value(u))
				continue
			}
			l.seen[k] = true
		}
		pending = append(pending, i)
	}
	known, err := s.knownHashes(ctx, inst, in, pending, rule)
	if err != nil {
		for _, i := range pending {
			out[i].Effect, out[i].Reason = EffectFailed, err.Error()
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
		k, found := known[rule.Match.Of(in[i])]
		if reason := staffReason(in[i], found && k.staff, rule); reason != "" {
			out[i].Effect, out[i].Reason = EffectRefused, reason
			continue
		}
		unchanged := found && rule.UpdateMatched && hashes[i] != "" && k.hash == hashes[i] && k.external && !matched[k.id]
		if found {
			matched[k.id] = true
		}
		// A record the same as the one applied last time was valid then;
		// any other is checked before it is applied.
		if !unchanged {
			if reason := s.checkIncoming(in[i], rule); reason != "" {
				out[i].Effect, out[i].Reason = EffectRefused, reason
				continue
			}
		}
		keys := keysOf(in[i])
		wanted := slices.ContainsFunc(keys, func(k string) bool { return taken[k] })
		switch {
		case unchanged:
			out[i].Effect, out[i].UserID = EffectUnchanged, k.id
		case !found && !wanted && l.dry == nil && rule.AddUnmatched:
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

// lookups runs the batch reads of ApplyExternal. On PostgreSQL they run in
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
// segments, the owner's external_id, the defaults.
func normalizeIncoming(inst string, u *User, rule ExternalApply) {
	u.Institution = inst
	normalizeCore(u)
	u.AccountType, u.ExternalID = AccountExternal, rule.Owner
	keepUnsent(u, &User{RecordType: rule.RecordType, Status: StatusActive})
	eachSegment(u, func(_ string, seg *Segment) { seg.SegmentType, seg.ID = SegmentExternal, "" })
	for i := range u.Notes {
		u.Notes[i].Origin = OriginExternal
		u.Notes[i].CreatedBy = "system:sis:" + rule.Owner
	}
	for i := range u.Blocks {
		if u.Blocks[i].BlockStatus == "" {
			u.Blocks[i].BlockStatus = StatusActive
		}
		u.Blocks[i].CreatedBy = "system:sis:" + rule.Owner
	}
}

// checkIncoming checks a normalized incoming user alone; it returns why the
// user is refused, or "".
func (s *Service) checkIncoming(u *User, rule ExternalApply) string {
	if err := s.validateUser(u, ""); err != nil {
		return reasonOf(err)
	}
	if !rule.Match.OnPrimaryID() && identifierOf(u, rule.Match.IDType) == nil {
		return fmt.Sprintf("the record has no identifier of type %s, which the profile matches on", rule.Match.IDType)
	}
	return ""
}

// staffReason says why an incoming user is refused when the rule does
// not allow staff records: the user is STAFF, or matches a STAFF record
// (held); "" otherwise.
func staffReason(u *User, held bool, rule ExternalApply) string {
	switch {
	case rule.AllowStaff:
		return ""
	case u.RecordType == RecordStaff:
		return fmt.Sprintf("record_type STAFF: profile %s does not allow staff records (allow_staff)", rule.Owner)
	case held:
		return fmt.Sprintf("the %s %q belongs to a staff record, which profile %s does not change: it does not allow staff records (allow_staff)", rule.Match, rule.Match.value(u), rule.Owner)
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

// incomingHash fingerprints what the SIS sent (after normalization), so
// that the next run can skip a user whose record is the same. A record with
// a PIN gets none: PINs are compared against their slow hash instead.
func incomingHash(u *User, rule ExternalApply) string {
	if u.PINNumber != "" {
		return ""
	}
	// The field keeps its name: the fingerprints stored by earlier runs
	// stay valid.
	b, _ := json.Marshal(struct {
		U       *User
		Profile string
	}{u, rule.Owner}) // plain data: cannot fail
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
func (s *Service) knownHashes(ctx context.Context, inst string, in []*User, pending []int, rule ExternalApply) (map[string]knownUser, error) {
	keys := make([]string, 0, len(pending))
	for _, i := range pending {
		// A key that breaks the text rule names nobody; its user is
		// refused by the checks that follow, the others go on.
		if k := rule.Match.Of(in[i]); Findable(k) {
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
		if rule.Match.OnPrimaryID() {
			return db.Model(&User{}).Select("primary_id_key AS match_key, id, sis_hash, account_type, record_type").
				Where("institution = ? AND primary_id_key IN ?", inst, keys).Scan(&rows).Error
		}
		return db.Table("pk_user_identifiers AS i").Joins("JOIN pk_users u ON u.id = i.user_id").
			Select("i.value_key AS match_key, u.id, u.sis_hash, u.account_type, u.record_type").
			Where("i.institution = ? AND i.id_type = ? AND i.value_key IN ?", inst, rule.Match.IDType, keys).Scan(&rows).Error
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
func (s *Service) syncOne(ctx context.Context, inst string, u *User, hash string, rule ExternalApply, dry *dryRun) Applied {
	res := Applied{PrimaryID: u.PrimaryID}
	var before, after *User
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, reason, err := s.matchIncoming(tx, inst, u, rule, dry)
		if err != nil {
			return err
		}
		if reason != "" {
			res.Effect, res.Reason = EffectRefused, reason
			return nil
		}
		if cur == nil {
			err = s.syncCreate(ctx, tx, inst, u, hash, rule, dry, &res, &after)
		} else {
			before = cloneUser(cur)
			err = s.syncUpdate(ctx, tx, inst, cur, u, hash, rule, dry, &res, &after)
		}
		if err != nil || after == nil {
			return err
		}
		// The entry commits with the user: a user whose entry cannot be
		// written is not applied, and fails.
		switch res.Effect {
		case EffectCreated:
			return s.recordChange(ctx, inst, AuditCreate, nil, after)
		case EffectUpdated:
			return s.recordChange(ctx, inst, AuditUpdate, before, after)
		}
		return nil
	})
	if rule.DryRun && errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		if e, ok := fault.As(s.translate(err)); ok && e.Kind != fault.Stale {
			return Applied{PrimaryID: u.PrimaryID, Effect: EffectRefused, Reason: reasonOf(e)}
		}
		return Applied{PrimaryID: u.PrimaryID, Effect: EffectFailed, Reason: err.Error()}
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
	switch res.Effect {
	case EffectCreated:
		s.changed(ctx, Change{Institution: inst, Action: Created, After: out})
	case EffectUpdated:
		s.changed(ctx, Change{Institution: inst, Action: Updated, Before: s.finishRead(before), After: out})
	}
	return res
}

// matchIncoming finds the external user an incoming user matches, or nil.
// A reason is returned when the incoming user must be refused.
func (s *Service) matchIncoming(tx *gorm.DB, inst string, u *User, rule ExternalApply, dry *dryRun) (*User, string, error) {
	cur, decided, err := dry.match(u, rule)
	if err != nil {
		return nil, "", err
	}
	switch {
	case decided:
		// The users before it in the dry run touched the key.
	case rule.Match.OnPrimaryID():
		found, err := loadUser(tx, inst, u.PrimaryID)
		if err != nil && !errors.Is(err, fault.ErrNotFound) {
			return nil, "", err
		}
		cur = found
	default:
		id := identifierOf(u, rule.Match.IDType)
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
		return nil, fmt.Sprintf("the %s %q belongs to internal user %q, which a synchronize never changes", rule.Match, rule.Match.value(u), cur.PrimaryID), nil
	}
	if reason := staffReason(u, cur != nil && cur.RecordType == RecordStaff, rule); reason != "" {
		return nil, reason, nil
	}
	if cur != nil && !rule.UpdateMatched {
		return nil, fmt.Sprintf("user %q exists already; an import adds new users only", cur.PrimaryID), nil
	}
	if cur == nil && !rule.AddUnmatched {
		return nil, fmt.Sprintf("no external user has the %s %q, and the profile rejects unmatched users", rule.Match, rule.Match.value(u)), nil
	}
	return cur, "", nil
}

func (s *Service) syncCreate(ctx context.Context, tx *gorm.DB, inst string, u *User, hash string, rule ExternalApply, dry *dryRun, res *Applied, after **User) error {
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
	res.Effect, res.UserID = EffectCreated, u.ID
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

func (s *Service) syncUpdate(ctx context.Context, tx *gorm.DB, inst string, cur, in *User, hash string, rule ExternalApply, dry *dryRun, res *Applied, after **User) error {
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
		res.Effect = EffectUnchanged
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
		res.Effect, *after = EffectUpdated, m
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
	res.Effect = EffectUpdated
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
