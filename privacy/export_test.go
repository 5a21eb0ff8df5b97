package privacy

// Pending is how many entries of calls outside a transaction wait for the
// writer.
func Pending(s *Service) int64 { return s.pending.Load() }

// SetCSVBatch makes WriteCSV read n entries at a time until the test ends.
func SetCSVBatch(t interface{ Cleanup(func()) }, n int) {
	old := csvBatch
	csvBatch = n
	t.Cleanup(func() { csvBatch = old })
}

// SetAfterBatch calls f after each batch a run of r commits (or counts),
// from the goroutine that wrote it (two may call it at once).
func SetAfterBatch(r *Retention, f func(kind string)) { r.afterBatch = f }

// SetPurgeAfterBatch calls f after each batch a purge of p goes through.
func SetPurgeAfterBatch(p *Purger, f func()) { p.afterBatch = f }
