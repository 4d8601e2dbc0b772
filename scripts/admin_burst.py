#!/usr/bin/env python3
"""Admin API writes for bench-admin-burst.sh, on one keep-alive connection.

  admin_burst.py PORT preload N   creates consumers pre-0 .. pre-(N-1)
  admin_burst.py PORT burst N     creates N more, prints "START END SECONDS" (unix times)
"""
import http.client
import json
import sys
import time

port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
prefix = "pre" if mode == "preload" else f"burst{int(time.time())}"
t0 = time.time()
for i in range(n):
    body = json.dumps({"username": f"{prefix}-{i}", "tags": ["bench"]})
    c.request("POST", "/consumers", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 201:
        sys.exit(f"POST /consumers: {r.status}")
t1 = time.time()
print(f"{t0:.3f} {t1:.3f} {t1 - t0:.3f}")
