// Package keys makes the keys patronkit's rows are found by, the same way
// in every module: the ids of new rows, and the folded form of the values
// that are unique whatever their case (primary_ids, identifier values,
// barcodes, codes), which every database compares alike.
package keys

import (
	"strings"

	"github.com/google/uuid"
)

// NewID returns a new time-ordered id (a UUIDv7): rows sort in the order
// they were written, and ids are made here, not by the database (MySQL
// returns none for rows an upsert inserts).
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Fold is the form a case-insensitive key is stored and compared in:
// without surrounding blanks, in lower case. A unique index on the folded
// column holds on every database, whatever its collation.
func Fold(v string) string { return strings.ToLower(strings.TrimSpace(v)) }
