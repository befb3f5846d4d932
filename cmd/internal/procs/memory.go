package procs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is what /proc/PID/status says about a process's memory, in bytes.
type Memory struct {
	RSS int64 // VmRSS: resident set size now
	HWM int64 // VmHWM: the largest RSS so far
}

// ReadMemory reads the memory of process pid from /proc. It fails when the
// process is gone or its status has no VmRSS.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = kb << 10
		case "VmHWM":
			m.HWM = kb << 10
		}
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}
