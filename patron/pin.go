package patron

import (
	"golang.org/x/crypto/bcrypt"
)

// hashPIN returns the slow hash of a PIN.
func (s *Service) hashPIN(pin string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pin), s.pinCost)
	return string(h), err
}

// pinMatches compares a PIN with a stored hash in constant time; an empty
// hash (no PIN set) never matches but costs the same.
func (s *Service) pinMatches(hash, pin string) bool {
	if hash == "" {
		hash = s.dummyHash
	}
	s.signIn.hashes.Add(1)
	ok := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pin)) == nil
	return ok && hash != s.dummyHash
}
