// Package apikeys keeps the API keys other applications of the campus
// (identity management connectors, discovery layers, scripts written for
// Alma's users API) call the kit with: the seed's "trust between
// applications". A key acts as one STAFF user of an institution, whose
// roles decide what it may do; it may be read-only and may expire. The
// secret is shown once, when the key is made, and only its SHA-256 hash
// is stored: a high-entropy random secret needs no slow hash.
//
// The HTTP adapter (adapters/ginapi) lets staff with the action
// api_keys.manage make, list and revoke keys; adapters/almaapi takes them
// (Authorization: apikey KEY, or ?apikey=KEY).
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Key is an API key as staff see it: never its secret.
type Key struct {
	// ID names the key (to revoke it).
	ID          string `json:"id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null;index:pk_api_keys_inst"`
	// Name says what the key is for ("IdM connector").
	Name string `json:"name" gorm:"size:255;not null"`
	// StaffID is the primary_id of the STAFF user the key acts as: its
	// roles decide what a call made with the key may do.
	StaffID string `json:"staff_id" gorm:"size:255;not null"`
	// Prefix is the first characters of the secret, to recognise a key
	// in a list without showing it.
	Prefix string `json:"prefix" gorm:"size:16;not null"`
	// Hash is the SHA-256 of the secret, in hex; never shown.
	Hash string `json:"-" gorm:"size:64;not null;uniqueIndex:pk_api_keys_hash"`
	// ReadOnly keys may only read (GET).
	ReadOnly bool `json:"read_only" gorm:"not null"`
	// ExpiresAt is when the key stops working; nil for never.
	ExpiresAt *time.Time `json:"expires_at"`
	// RevokedAt is when staff revoked the key; nil while it stands.
	RevokedAt *time.Time `json:"revoked_at"`
	// CreatedBy is the primary_id of who made the key.
	CreatedBy string    `json:"created_by" gorm:"size:255;not null"`
	CreatedAt time.Time `json:"created_at" gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (Key) TableName() string { return "pk_api_keys" }

// New is what staff send to make a key.
type New struct {
	// Name says what the key is for. Required, at most 255 characters.
	Name string `json:"name"`
	// StaffID is the primary_id of the STAFF user the key acts as.
	// Required.
	StaffID string `json:"staff_id"`
	// ExpiresAt, when set, is when the key stops working; it must be in
	// the future.
	ExpiresAt *time.Time `json:"expires_at"`
	// ReadOnly keys may only read.
	ReadOnly bool `json:"read_only"`
}

// Made is a key just made, with its secret: the only time the secret is
// shown.
type Made struct {
	Key
	// Secret is what the application sends (Authorization: apikey
	// SECRET). It is not kept: lost, the key is revoked and another made.
	Secret string `json:"secret"`
}

// Errors of Authenticate. Each is a fault.Error of kind Unauthenticated.
var (
	ErrUnknown = &fault.Error{Kind: fault.Unauthenticated, Detail: "the API key is not known"}
	ErrRevoked = &fault.Error{Kind: fault.Unauthenticated, Detail: "the API key was revoked"}
	ErrExpired = &fault.Error{Kind: fault.Unauthenticated, Detail: "the API key has expired"}
)

// Service keeps the API keys of every institution.
type Service struct {
	db      *gorm.DB
	patrons *patron.Service
	now     func() time.Time
}

// NewService returns the keys kept in db, acting as users of patrons; now
// is the clock of expiry (time.Now when nil).
func NewService(db *gorm.DB, patrons *patron.Service, now func() time.Time) (*Service, error) {
	if db == nil || patrons == nil {
		return nil, errors.New("apikeys: NewService needs a *gorm.DB and the patron service")
	}
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, patrons: patrons, now: now}, nil
}

// secretPrefix starts every secret, so that a key found in a file or a
// log is recognised as patronkit's.
const secretPrefix = "pkak_"

// Create makes a key of inst acting as the STAFF user in.StaffID, by the
// actor ctx carries, and returns it with its secret. A missing or too
// long name, an unknown user, a user who is not STAFF or an expiry not in
// the future is Invalid, naming the field.
func (s *Service) Create(ctx context.Context, inst string, in New) (*Made, error) {
	name := strings.TrimSpace(in.Name)
	var bad []fault.FieldError
	switch {
	case name == "" || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		bad = append(bad, fault.FieldError{Field: "name", Code: "required", Message: "must be text on one line, not empty"})
	case utf8.RuneCountInString(name) > 255:
		bad = append(bad, fault.FieldError{Field: "name", Code: "too_long", Message: "must be at most 255 characters"})
	}
	now := s.now().UTC().Truncate(time.Second)
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		bad = append(bad, fault.FieldError{Field: "expires_at", Code: "in_the_past", Message: "must be in the future"})
	}
	var staffID string
	if strings.TrimSpace(in.StaffID) == "" || !patron.Findable(in.StaffID) {
		bad = append(bad, fault.FieldError{Field: "staff_id", Code: "required", Message: "must name the STAFF user the key acts as"})
	} else {
		u, err := s.patrons.Get(ctx, inst, in.StaffID)
		var fe *fault.Error
		switch {
		case errors.As(err, &fe) && fe.Kind == fault.NotFound:
			bad = append(bad, fault.FieldError{Field: "staff_id", Code: "not_found", Message: "no user has this primary_id"})
		case err != nil:
			return nil, err
		case u.RecordType != patron.RecordStaff:
			bad = append(bad, fault.FieldError{Field: "staff_id", Code: "not_staff", Message: "a key acts as a STAFF user, whose roles decide what it may do"})
		default:
			staffID = u.PrimaryID
		}
	}
	if len(bad) > 0 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the API key is not valid", Fields: bad}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	secret := secretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	actor, _ := patron.ActorFrom(ctx)
	k := Key{ID: keys.NewID(), Institution: inst, Name: name, StaffID: staffID, Prefix: secret[:12], Hash: hash(secret),
		ReadOnly: in.ReadOnly, CreatedBy: actor.ID, CreatedAt: now}
	if in.ExpiresAt != nil {
		at := in.ExpiresAt.UTC().Truncate(time.Second)
		k.ExpiresAt = &at
	}
	// The key and its entry on the audit trail (about the staff user it
	// acts as, as a role given to them is) commit together.
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		if err := tx.Create(&k).Error; err != nil {
			return fmt.Errorf("apikeys: %w", err)
		}
		return s.record(ctx, inst, &k, "made")
	})
	if err != nil {
		return nil, err
	}
	return &Made{Key: k, Secret: secret}, nil
}

// AuditWhat is the What of the audit trail's entries about keys: an
// update of the staff user the key acts as, whose details name the key
// (its id, name, prefix, read-only flag and expiry) and what befell it
// ("made" or "revoked").
const AuditWhat = "api key"

// record puts what befell k on the audit trail, in the transaction ctx
// carries.
func (s *Service) record(ctx context.Context, inst string, k *Key, what string) error {
	d := map[string]any{"key": map[string]any{"id": k.ID, "name": k.Name, "prefix": k.Prefix, "read_only": k.ReadOnly, "expires_at": k.ExpiresAt}, "event": what}
	details, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return s.patrons.RecordAudit(ctx, inst, patron.AuditUpdate, k.StaffID, AuditWhat, string(details))
}

// List returns the keys of inst, revoked and expired ones included,
// newest first.
func (s *Service) List(ctx context.Context, inst string) ([]Key, error) {
	var out []Key
	if err := txctx.DB(ctx, s.db).Where("institution = ?", inst).Order("created_at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, err
	}
	for i := range out {
		utc(&out[i])
	}
	return out, nil
}

// Revoke revokes the key id of inst: it stops working at once. An unknown
// key is NotFound; revoking a revoked key changes nothing.
func (s *Service) Revoke(ctx context.Context, inst, id string) (*Key, error) {
	var out *Key
	err := txctx.Transaction(ctx, s.db, func(ctx context.Context, tx *gorm.DB) error {
		var ks []Key
		if err := tx.Where("institution = ? AND id = ?", inst, id).Limit(1).Find(&ks).Error; err != nil {
			return err
		}
		if len(ks) == 0 {
			return &fault.Error{Kind: fault.NotFound, Detail: "no API key has this id"}
		}
		k := ks[0]
		if k.RevokedAt == nil {
			at := s.now().UTC().Truncate(time.Second)
			k.RevokedAt = &at
			if err := tx.Model(&Key{}).Where("id = ?", k.ID).Update("revoked_at", at).Error; err != nil {
				return err
			}
			if err := s.record(ctx, inst, &k, "revoked"); err != nil {
				return err
			}
		}
		utc(&k)
		out = &k
		return nil
	})
	return out, err
}

// Authenticate returns the key whose secret is secret, if it stands:
// ErrUnknown, ErrRevoked or ErrExpired otherwise.
func (s *Service) Authenticate(ctx context.Context, secret string) (*Key, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > 256 {
		return nil, ErrUnknown
	}
	var ks []Key
	if err := txctx.DB(ctx, s.db).Where("hash = ?", hash(secret)).Limit(1).Find(&ks).Error; err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, ErrUnknown
	}
	k := ks[0]
	utc(&k)
	switch {
	case k.RevokedAt != nil:
		return nil, ErrRevoked
	case k.ExpiresAt != nil && !s.now().Before(*k.ExpiresAt):
		return nil, ErrExpired
	}
	return &k, nil
}

func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func utc(k *Key) {
	k.CreatedAt = k.CreatedAt.UTC()
	for _, t := range []*time.Time{k.ExpiresAt, k.RevokedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
}

// Migrations creates the table of API keys.
func Migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		ID: "202612060101_api_keys",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(&keyV1{})
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable(&keyV1{}) },
	}}
}

type keyV1 struct {
	ID          string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null;index:pk_api_keys_inst"`
	Name        string `gorm:"size:255;not null"`
	StaffID     string `gorm:"size:255;not null"`
	Prefix      string `gorm:"size:16;not null"`
	Hash        string `gorm:"size:64;not null;uniqueIndex:pk_api_keys_hash"`
	ReadOnly    bool   `gorm:"not null"`
	ExpiresAt   *time.Time
	RevokedAt   *time.Time
	CreatedBy   string    `gorm:"size:255;not null"`
	CreatedAt   time.Time `gorm:"not null"`
}

func (keyV1) TableName() string { return "pk_api_keys" }
