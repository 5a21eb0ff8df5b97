// Package privacy holds the library's duties towards the people it keeps
// records of: what it holds about a person, answered whole (their right of
// access, PersonalData), and the trail of who read, changed or exported
// their data.
//
// It knows no web framework: the HTTP adapter (adapters/ginapi) calls it.
package privacy
