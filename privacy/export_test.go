package privacy

// Pending is how many entries of calls outside a transaction wait for the
// writer.
func Pending(s *Service) int64 { return s.pending.Load() }
