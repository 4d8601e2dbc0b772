#!/usr/bin/env python3
"""Runs a command; prints its stdout, then one line on stderr:
`timed: cpu_s=<user+sys of the command and its children> maxrss_kib=<peak RSS>`."""
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)
sys.stdout.buffer.write(p.stdout)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"timed: cpu_s={r.ru_utime + r.ru_stime:.3f} maxrss_kib={r.ru_maxrss}", file=sys.stderr)
sys.exit(p.returncode)
