package casbinmodel

// LegacyPolicyLines are the p lines of the last default policy on URLs,
// for the tests of the migrations that upgrade databases it seeded.
func LegacyPolicyLines() [][]string { return legacyRules() }

// DefaultPolicyLines are the p lines of the default policy.
func DefaultPolicyLines() [][]string { return defaultRules() }
