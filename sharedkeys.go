package patronkit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/internal/txctx"
)

// sharedKey is a random key the kit made once and keeps in the database
// for every instance on it (pk_shared_keys): the key of the library card
// pages' session cookies, say.
type sharedKey struct {
	Name      string    `gorm:"primaryKey;size:64"`
	Value     string    `gorm:"size:255;not null"`
	CreatedAt time.Time `gorm:"not null"`
}

func (sharedKey) TableName() string { return "pk_shared_keys" }

// sharedKeyMigrations create the table of the shared keys.
func sharedKeyMigrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		ID:       "202612070201_shared_keys",
		Migrate:  func(tx *gorm.DB) error { return tx.Migrator().CreateTable(&sharedKey{}) },
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable(&sharedKey{}) },
	}}
}

// SharedKey answers the random key named name (size bytes, 16 to 64)
// that every instance of the host's application on the kit's database
// shares: the first instance that asks makes it and stores it, the
// others and those started later read it. Two instances asking at once
// get the same key (the name is the table's unique key: the second
// insert does nothing, and both read what is stored). It is for a
// secret the instances need alike and a host need not configure, such as
// the key of the library card pages' session cookies
// (adapters/librarycard); whoever can read the database can read the
// key. It works outside the host's transaction and needs Migrate to have
// run.
func (k *Kit) SharedKey(ctx context.Context, name string, size int) ([]byte, error) {
	if name == "" || len(name) > 64 || size < 16 || size > 64 {
		return nil, errors.New("patronkit: SharedKey takes a name of 1 to 64 characters and a size of 16 to 64 bytes")
	}
	db := k.db.WithContext(txctx.Without(ctx))
	read := func() ([]byte, error) {
		var row sharedKey
		err := db.Where("name = ?", name).Take(&row).Error
		if err != nil {
			return nil, err
		}
		key, err := base64.StdEncoding.DecodeString(row.Value)
		if err != nil || len(key) != size {
			return nil, fmt.Errorf("patronkit: the shared key %q stored is not a key of %d bytes", name, size)
		}
		return key, nil
	}
	key, err := read()
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return key, err
	}
	fresh := make([]byte, size)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	row := sharedKey{Name: name, Value: base64.StdEncoding.EncodeToString(fresh), CreatedAt: k.Now().UTC()}
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return nil, fmt.Errorf("patronkit: storing the shared key %q: %w", name, err)
	}
	return read() // the key stored, this instance's or one made at the same time
}
