package patron

// PINHashesCompared tells how many PIN hashes s has compared so far: the
// costly step that sign-in guards must keep unknown sources from.
func PINHashesCompared(s *Service) int64 { return s.signIn.hashes.Load() }
