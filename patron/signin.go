package patron

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
)

// The bounds of what SignIn looks at: a primary_id longer than any that can
// be stored, or a PIN longer than bcrypt reads, cannot sign in.
const (
	maxPrimaryIDChars = 255
	maxPINBytes       = 72
	maxSourceBytes    = 255
	// accountSource is the SourceKey of an account's failures from every
	// source together; a source's key is hexadecimal and never "*".
	accountSource = "*"
)

// SignInFailures counts the failed sign-ins of an existing account from one
// source (SourceKey, the SHA-256 of the source), and from all sources
// together (SourceKey "*"). It is kept in the database so that a restart or
// another instance sees it. A row is forgotten once Lockout has passed since
// its last failure and its lock has ended.
type SignInFailures struct {
	Institution  string    `gorm:"primaryKey;size:64"`
	PrimaryIDKey string    `gorm:"primaryKey;size:255"`
	SourceKey    string    `gorm:"primaryKey;size:64"`
	Failures     int       `gorm:"not null"`
	LastFailedAt time.Time `gorm:"not null"`
	LockedUntil  time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (SignInFailures) TableName() string { return "pk_signin_failures" }

// signInGuard is what a Service keeps in memory against guessing and
// floods of sign-ins: each source's budget of failed attempts, and the
// credentials verified lately.
type signInGuard struct {
	maxFails        int
	maxAccountFails int
	lockout         time.Duration

	burst   int
	refill  time.Duration
	mu      sync.Mutex // makes finding or adding a budget one step
	budgets *lru.Cache[string, *sourceBudget]

	idTypes []string // identifier types that sign in (Options.SignInIdentifiers)

	cacheFor time.Duration
	creds    *lru.Cache[[sha256.Size]byte, verifiedCredential] // nil: no cache
	credKey  []byte

	hashes atomic.Int64 // PIN hashes compared, for tests
}

// configure applies the sign-in options and their defaults.
func (g *signInGuard) configure(opts Options) error {
	if opts.MaxSignInFailures < 0 || opts.MaxAccountSignInFailures < 0 || opts.Lockout < 0 ||
		opts.SignInBurst < 0 || opts.SignInRefill < 0 || opts.SignInSources < 0 || opts.SignInCacheSize < 0 {
		return errors.New("patron: the sign-in limits cannot be negative")
	}
	g.maxFails = cmp.Or(opts.MaxSignInFailures, 5)
	g.maxAccountFails = cmp.Or(opts.MaxAccountSignInFailures, max(50, 10*g.maxFails))
	if g.maxAccountFails < g.maxFails {
		return fmt.Errorf("patron: MaxAccountSignInFailures (%d) cannot be lower than MaxSignInFailures (%d)", g.maxAccountFails, g.maxFails)
	}
	g.lockout = cmp.Or(opts.Lockout, 15*time.Minute)
	g.idTypes = slices.Clone(opts.SignInIdentifiers)
	g.burst = cmp.Or(opts.SignInBurst, 20)
	g.refill = cmp.Or(opts.SignInRefill, 3*time.Second)
	var err error
	if g.budgets, err = lru.New[string, *sourceBudget](cmp.Or(opts.SignInSources, 10000)); err != nil {
		return err
	}
	g.cacheFor = cmp.Or(opts.SignInCacheFor, time.Minute)
	if g.cacheFor < 0 {
		return nil
	}
	if g.creds, err = lru.New[[sha256.Size]byte, verifiedCredential](cmp.Or(opts.SignInCacheSize, 10000)); err != nil {
		return err
	}
	g.credKey = make([]byte, 32)
	_, err = rand.Read(g.credKey)
	return err
}

// sourceBudget is the rate of failed sign-ins left to one source.
type sourceBudget struct {
	lim     *rate.Limiter
	refused atomic.Bool // logged as limited, until its whole burst is back
}

// verifiedCredential is what the cache keeps of a credential it verified:
// the user and their stored PIN hash then, never the PIN.
type verifiedCredential struct {
	userID  string
	pinHash string
	until   time.Time
}

// SignIn checks a user's primary_id and PIN, coming from source: the client's
// address, or what else tells one client from another (a kiosk's name).
// Callers that cannot tell pass one fixed name for all their clients, who
// then share one budget.
//
// primaryID may instead be the value of an identifier of one of the
// types Options.SignInIdentifiers names (a barcode), where no user has it
// as primary_id; the sign-in is then that user's, their failures counted.
//
// A user signs in when the PIN matches, the account is active and no lock
// holds. Guards, in the order they apply:
//
//   - a primary_id longer than 255 characters, or an empty one, fails at
//     once, touching neither the database nor a PIN hash;
//   - a credential verified less than SignInCacheFor ago is accepted again
//     without its hash, after the user's row shows the same PIN hash and an
//     active account (so a PIN change, a deactivation or a deletion takes
//     effect at once);
//   - each source may fail SignInBurst times at once and once more every
//     SignInRefill; past that it is Locked (RetryAfter says when it may try
//     again) before the database or a hash is touched. Successful sign-ins
//     use none of it. This is counted in memory, per instance;
//   - MaxSignInFailures wrong PINs for an account from one source lock that
//     account for that source for Lockout: the owner signing in from
//     elsewhere is not locked out. MaxAccountSignInFailures wrong PINs from
//     all sources together lock the account for everyone for Lockout.
//     Failures are counted in the database, for a name nobody holds as for
//     a user (a lock must not tell who exists), and forgotten once Lockout
//     has passed without a new one. Both kinds of
//     lock are logged, with the primary_id and a hash of the source.
func (s *Service) SignIn(ctx context.Context, inst, primaryID, pin, source string) (*User, error) {
	if len(primaryID) > 4*maxPrimaryIDChars || !Findable(primaryID) {
		// No user holds such a primary_id (and PostgreSQL cannot even
		// compare one that is not UTF-8 or holds NUL).
		return nil, unauthenticated()
	}
	key := keys.Fold(primaryID)
	if key == "" || utf8.RuneCountInString(key) > maxPrimaryIDChars {
		return nil, unauthenticated()
	}
	g := &s.signIn
	db := s.conn(ctx)
	now := s.clock()
	src := sourceKey(source)

	if u, done, err := s.signInCached(db, inst, key, pin, src, now); done {
		return u, err
	}

	budget := g.budget(src)
	if budget.lim.TokensAt(now) >= float64(g.burst) {
		budget.refused.Store(false) // quiet long enough: a new episode
	}
	r := budget.lim.ReserveN(now, 1)
	if wait := r.DelayFrom(now); !r.OK() || wait > 0 {
		r.CancelAt(now)
		if !budget.refused.Swap(true) {
			s.log.Warn("patron: a source is making too many failed sign-ins; it waits before trying again",
				"institution", inst, "source_hash", src[:12], "burst", g.burst, "refill", g.refill)
		}
		return nil, &fault.Error{Kind: fault.Locked, Detail: "too many failed sign-ins from your address: wait before trying again", RetryAfter: ceilSeconds(wait)}
	}

	var u User
	err := db.Where("institution = ? AND primary_id_key = ?", inst, key).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) && len(g.idTypes) > 0 {
		// An identifier of a type that signs in (a barcode) names its
		// user; the failures then count against that user.
		var id Identifier
		err = db.Where("institution = ? AND id_type IN ? AND value_key = ? AND (status IS NULL OR status <> ?)", inst, g.idTypes, key, "INACTIVE").
			Take(&id).Error
		if err == nil {
			err = db.Where("institution = ? AND id = ?", inst, id.UserID).Take(&u).Error
			key = u.PrimaryIDKey
		}
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, s.signInNobody(db, inst, key, primaryID, pin, src, now)
	}
	if err != nil {
		return nil, err
	}
	fails, err := failuresOf(db, inst, key, src)
	if err != nil {
		return nil, err
	}
	if err := fails.locked(now); err != nil {
		return nil, err
	}
	ok := len(pin) <= maxPINBytes && s.pinMatches(u.PINHash, pin)
	if ok && u.Status == StatusActive {
		r.CancelAt(now)
		if err := fails.forgetSource(db); err != nil {
			return nil, err
		}
		g.remember(inst, key, pin, &u, now)
		return loadUserByID(db, inst, u.ID)
	}
	locks, err := s.countFailure(db, &u, src, now)
	if err != nil {
		return nil, err
	}
	// On the audit trail: the failure, and the locks it set, naming the
	// source by the start of its hash (never the address).
	s.emit(ctx, inst, AuditSignInFailed, u.PrimaryID, "sign-in from source "+src[:12])
	for _, l := range locks {
		s.emit(ctx, inst, AuditLocked, u.PrimaryID, "sign-in locked for "+l)
	}
	return nil, unauthenticated()
}

// signInNobody answers a sign-in to a name nobody holds as it answers a
// wrong PIN to a held one: the same PIN hash work, and failures counted and
// locked the same way, so that neither the time, the answer nor a lock
// tells which users exist. Nothing goes on the audit trail, which is about
// users.
func (s *Service) signInNobody(db *gorm.DB, inst, key, primaryID, pin, src string, now time.Time) error {
	fails, err := failuresOf(db, inst, key, src)
	if err != nil {
		return err
	}
	if err := fails.locked(now); err != nil {
		return err
	}
	if len(pin) <= maxPINBytes {
		s.pinMatches("", pin)
	}
	if _, err := s.countFailure(db, &User{Institution: inst, PrimaryID: primaryID, PrimaryIDKey: key}, src, now); err != nil {
		return err
	}
	return unauthenticated()
}

// signInCached accepts a credential the cache holds when the user's row
// still has the PIN hash it was verified against and the account is active
// and not locked. done is false when the cache cannot answer.
func (s *Service) signInCached(db *gorm.DB, inst, key, pin, src string, now time.Time) (u *User, done bool, err error) {
	g := &s.signIn
	if g.creds == nil {
		return nil, false, nil
	}
	ck := g.credentialKey(inst, key, pin)
	c, ok := g.creds.Get(ck)
	if !ok {
		return nil, false, nil
	}
	if !now.Before(c.until) {
		g.creds.Remove(ck)
		return nil, false, nil
	}
	var row User
	err = db.Where("institution = ? AND primary_id_key = ?", inst, key).Take(&row).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, true, err
	}
	if err != nil || row.ID != c.userID || row.PINHash != c.pinHash || row.Status != StatusActive {
		g.creds.Remove(ck)
		return nil, false, nil
	}
	fails, err := failuresOf(db, inst, key, src)
	if err != nil {
		return nil, true, err
	}
	if err := fails.locked(now); err != nil {
		return nil, true, err
	}
	if err := fails.forgetSource(db); err != nil {
		return nil, true, err
	}
	u, err = loadUserByID(db, inst, row.ID)
	return u, true, err
}

// failures are an account's failure rows for one source and for all.
type failures struct {
	source, account *SignInFailures
}

func failuresOf(db *gorm.DB, inst, key, src string) (failures, error) {
	var rows []SignInFailures
	err := db.Where("institution = ? AND primary_id_key = ? AND source_key IN ?", inst, key, []string{src, accountSource}).Find(&rows).Error
	var f failures
	for i := range rows {
		if rows[i].SourceKey == accountSource {
			f.account = &rows[i]
		} else {
			f.source = &rows[i]
		}
	}
	return f, err
}

// locked is the Locked error of the lock that holds longest, or nil.
func (f failures) locked(now time.Time) error {
	if f.account != nil && f.account.LockedUntil.After(now) {
		return &fault.Error{Kind: fault.Locked, Detail: "too many failed sign-ins to this account: it is locked for a while", RetryAfter: ceilSeconds(f.account.LockedUntil.Sub(now))}
	}
	if f.source != nil && f.source.LockedUntil.After(now) {
		return &fault.Error{Kind: fault.Locked, Detail: "too many failed sign-ins to this account from your address: it is locked there for a while", RetryAfter: ceilSeconds(f.source.LockedUntil.Sub(now))}
	}
	return nil
}

// forgetSource ends the count of the source after it signed in; the
// account's count from all sources stays.
func (f failures) forgetSource(db *gorm.DB) error {
	if f.source == nil {
		return nil
	}
	return db.Where("institution = ? AND primary_id_key = ? AND source_key = ?", f.source.Institution, f.source.PrimaryIDKey, f.source.SourceKey).
		Delete(&SignInFailures{}).Error
}

// countFailure adds one failure of u from src, and one of u from all
// sources, each atomically; a count older than Lockout starts again. A count
// that reaches its limit locks for Lockout and starts again.
func (s *Service) countFailure(db *gorm.DB, u *User, src string, now time.Time) (locks []string, err error) {
	g := &s.signIn
	cutoff := now.Add(-g.lockout)
	for _, k := range []string{src, accountSource} {
		row := SignInFailures{Institution: u.Institution, PrimaryIDKey: u.PrimaryIDKey, SourceKey: k, Failures: 1, LastFailedAt: now, LockedUntil: time.Unix(0, 0).UTC()}
		// failures is set before last_failed_at: MySQL reads the new
		// value of a column set earlier in the same statement.
		err := db.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "institution"}, {Name: "primary_id_key"}, {Name: "source_key"}},
			DoUpdates: clause.Set{
				{Column: clause.Column{Name: "failures"}, Value: gorm.Expr(
					"CASE WHEN pk_signin_failures.last_failed_at < ? AND pk_signin_failures.locked_until <= ? THEN 1 ELSE pk_signin_failures.failures + 1 END", cutoff, now)},
				{Column: clause.Column{Name: "last_failed_at"}, Value: now},
			},
		}).Create(&row).Error
		if err != nil {
			return nil, err
		}
		limit := g.maxFails
		if k == accountSource {
			limit = g.maxAccountFails
		}
		res := db.Model(&SignInFailures{}).
			Where("institution = ? AND primary_id_key = ? AND source_key = ? AND failures >= ?", u.Institution, u.PrimaryIDKey, k, limit).
			Updates(map[string]any{"failures": 0, "locked_until": now.Add(g.lockout)})
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected == 0 {
			continue
		}
		if k == accountSource {
			s.log.Warn("patron: an account is locked after failed sign-ins from many sources",
				"institution", u.Institution, "primary_id", u.PrimaryID, "failures", limit, "locked_for", g.lockout)
			locks = append(locks, "every source")
		} else {
			s.log.Warn("patron: an account is locked for one source after failed sign-ins from it",
				"institution", u.Institution, "primary_id", u.PrimaryID, "source_hash", src[:12], "failures", limit, "locked_for", g.lockout)
			locks = append(locks, "source "+src[:12])
		}
	}
	return locks, nil
}

// ExpireSignInFailures deletes the counts of failed sign-ins that are
// forgotten: Lockout has passed since their last failure and their lock has
// ended. It returns how many it deleted. The kit's Start calls it
// periodically.
func (s *Service) ExpireSignInFailures(ctx context.Context) (int64, error) {
	now := s.clock()
	res := s.conn(ctx).Where("last_failed_at < ? AND locked_until <= ?", now.Add(-s.signIn.lockout), now).Delete(&SignInFailures{})
	return res.RowsAffected, res.Error
}

// budget returns the source's budget of failed sign-ins, a full one for a
// source not seen lately.
func (g *signInGuard) budget(src string) *sourceBudget {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.budgets.Get(src); ok {
		return b
	}
	b := &sourceBudget{lim: rate.NewLimiter(rate.Every(g.refill), g.burst)}
	g.budgets.Add(src, b)
	return b
}

// credentialKey is a keyed hash of a credential: the cache never holds a
// PIN, and its key lives only in this instance's memory.
func (g *signInGuard) credentialKey(inst, key, pin string) [sha256.Size]byte {
	m := hmac.New(sha256.New, g.credKey)
	for _, part := range []string{inst, key, pin} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// remember caches a credential just verified against u's stored hash.
func (g *signInGuard) remember(inst, key, pin string, u *User, now time.Time) {
	if g.creds == nil {
		return
	}
	g.creds.Add(g.credentialKey(inst, key, pin), verifiedCredential{userID: u.ID, pinHash: u.PINHash, until: now.Add(g.cacheFor)})
}

// sourceKey is the stored form of a source: the SHA-256 of its first 255
// bytes, in hexadecimal.
func sourceKey(source string) string {
	if len(source) > maxSourceBytes {
		source = source[:maxSourceBytes]
	}
	h := sha256.Sum256([]byte(source))
	return hex.EncodeToString(h[:])
}

func unauthenticated() *fault.Error {
	return &fault.Error{Kind: fault.Unauthenticated, Detail: "unknown user, wrong PIN or inactive account"}
}

// ceilSeconds rounds d up to whole seconds, at least one.
func ceilSeconds(d time.Duration) time.Duration {
	secs := math.Ceil(d.Seconds())
	if secs < 1 {
		secs = 1
	}
	return time.Duration(secs) * time.Second
}
