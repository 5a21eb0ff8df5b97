package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readLoad reads the machine's CPU counters (/proc/stat), its load average
// (/proc/loadavg) and this process's CPU time (getrusage).
func readLoad() loadSample {
	var s loadSample
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal [guest
		// guest_nice, already counted in user and nice]
		if len(f) >= 9 && f[0] == "cpu" {
			var v [8]uint64
			ok := true
			for i := range v {
				n, err := strconv.ParseUint(f[i+1], 10, 64)
				ok = ok && err == nil
				v[i] = n
			}
			if ok {
				s.ok = true
				s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
				s.total = s.busy + v[3] + v[4]
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			s.loadavg = strings.Join(f[:3], " ")
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		s.processCPUErr = true
	} else {
		s.processCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}
