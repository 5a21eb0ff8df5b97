//go:build !linux

package main

// readLoad reads nothing outside Linux: the figures print as n/a.
func readLoad() loadSample { return loadSample{processCPUErr: true} }
