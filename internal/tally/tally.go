// Package tally reads counts per key from the database.
package tally

import "gorm.io/gorm"

// By runs q, a query answering the columns k (a key) and n (a count), and
// returns the counts by key.
func By(db *gorm.DB, q string, args ...any) (map[string]int64, error) {
	var rows []struct {
		K string
		N int64
	}
	if err := db.Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.K] = r.N
	}
	return out, nil
}
