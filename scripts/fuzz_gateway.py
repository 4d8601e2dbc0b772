#!/usr/bin/env python3
"""Hostile input against a running jwt-gateway (called by fuzz-gateway.sh).

  fuzz_gateway.py PROXY_PORT COUNT SEED TOKENS_JSON

TOKENS_JSON maps "CONSUMER/CLASS" to a token minted by `loadgen token`
(consumer web-app: HS256 with SECRET below; mobile-app: RS256). Sends COUNT
inputs, about two thirds hostile tokens and one third malformed requests,
each on a fresh connection, and judges each:

- a valid token must be answered 200, every other token must not (an
  accepted invalid token is a failure), and no token may get a 5xx;
- a malformed request must get a 4xx (or be closed without a response:
  hyper closes on some framing errors), never a 5xx or a hang;
- after every 500 inputs the gateway must still answer a valid request.

Prints `N passed, M failed` (and the first failures) and exits 1 on any.
"""

import base64
import hashlib
import hmac
import json
import random
import socket
import sys
import time

SECRET = b"compare-demo-hs256-secret-0123456789abcdef"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def exchange(port: int, raw: bytes, timeout: float = 5.0):
    """(status or None when closed without a response, hung)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(raw)
        except OSError:
            pass
        got = b""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in got:
            if time.monotonic() > deadline:
                return None, True
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                return None, True
            except OSError:
                return None, False
            if not chunk:
                break
            got += chunk
        if not got.startswith(b"HTTP/1.1 "):
            return None, False
        return int(got[9:12]), False
    finally:
        s.close()


def get(path: str, headers: dict) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: fuzz", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def sign_hs(header: dict, claims: dict, key: bytes = SECRET) -> str:
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(mac)}"


def mutate(rng: random.Random, tok: str, pub_pem: bytes) -> str:
    """A token that must be refused, derived from a valid one."""
    segs = tok.split(".")
    kind = rng.randrange(10)
    if kind == 0:  # a middle character of a segment changed (decoded bytes change)
        i = rng.randrange(3)
        s = segs[i]
        if len(s) > 2:
            j = rng.randrange(1, len(s) - 1)
            c = rng.choice([x for x in B64 if x != s[j]])
            segs[i] = s[:j] + c + s[j + 1:]
        return ".".join(segs)
    if kind == 1:  # truncated
        return tok[: rng.randrange(0, len(tok) - 1)]
    if kind == 2:  # a character inserted inside a segment (its bytes shift)
        inside = [j for j in range(2, len(tok) - 2) if tok[j - 1] != "." and tok[j] != "."]
        j = rng.choice(inside)
        return tok[:j] + rng.choice(B64 + ".+/") + tok[j:]
    if kind == 3:  # segments dropped, added, swapped
        op = rng.randrange(3)
        if op == 0:
            segs.pop(rng.randrange(3))
        elif op == 1:
            segs.insert(rng.randrange(4), rng.choice(segs))
        else:
            a, b = rng.sample(range(3), 2)
            segs[a], segs[b] = segs[b], segs[a]
        return ".".join(segs)
    header = json.loads(unb64(segs[0]))
    claims = json.loads(unb64(segs[1]))
    if kind == 4:  # alg none, in several spellings, signature dropped or kept
        header["alg"] = rng.choice(["none", "None", "NONE", "nOnE", ""])
        h = b64(json.dumps(header).encode())
        return f"{h}.{segs[1]}." + rng.choice(["", segs[2]])
    if kind == 5:  # alg confusion: HS256 keyed with the RS public key
        header["alg"] = "HS256"
        claims["iss"] = "mobile-app"
        return sign_hs(header, claims, pub_pem)
    if kind == 6:  # claims that fail, correctly signed
        now = int(time.time())
        bad = rng.choice([
            {"exp": now - rng.randrange(1, 10**6)},
            {"nbf": now + rng.randrange(600, 10**6)},
            {"exp": rng.choice(["soon", None, [1], {"a": 1}, -1e300, True])},
            {"nbf": rng.choice(["later", [2], True])},
            {"iss": rng.choice(["", "nobody", None, 7, ["web-app"]])},
        ])
        claims.update(bad)
        claims.setdefault("iss", "web-app")
        return sign_hs({"alg": "HS256", "typ": "JWT"}, claims)
    if kind == 7:  # header fields of the wrong type or alg unknown
        header["alg"] = rng.choice(["HS257", "RS1", 256, None, ["HS256"], "ES256", "PS256", "EdDSA"])
        h = b64(json.dumps(header).encode())
        return f"{h}.{segs[1]}.{segs[2]}"
    if kind == 8:  # not JSON, or JSON of the wrong shape, in a segment
        junk = rng.choice([b"{", b"[]", b"null", b"\xff\xfe", b'{"alg":"HS256"', b"1e999", b'"x"'])
        i = rng.randrange(2)
        segs[i] = b64(junk)
        return ".".join(segs)
    # random bytes, printable
    n = rng.choice([0, 1, 2, 10, 100, 1000, 8000])
    return "".join(rng.choice(B64 + ".") for _ in range(n))


def malformed(rng: random.Random) -> bytes:
    """A request the server must refuse (or close), never pass on as a 5xx."""
    k = rng.randrange(24)
    n = rng.randrange(1, 200)
    cases = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n folded: yes\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        b"GET /" + b"a" * (70000 + n) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X-a: b\r\n" * (100 + n) + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-big: " + b"v" * (500000 + n) + b"\r\n\r\n",
        b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(rng.randrange(256) for _ in range(n)),
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"A" * (70000 + n) + b"\r\n\r\n",
        b"GET /?jwt=" + b"%" * n + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        bytes(rng.randrange(256) for _ in range(n)) + b"\r\n\r\n",
    ]
    return cases[k]


def main():
    port, count, seed, tokens_file = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    tokens = json.load(open(tokens_file))
    pub_pem = open(sys.argv[5], "rb").read() if len(sys.argv) > 5 else b""
    rng = random.Random(seed)
    valid = [tokens["web-app/valid"], tokens["mobile-app/valid"]]
    named = [(k, v) for k, v in tokens.items() if not k.endswith("/valid")]
    passed, failures = 0, []

    def judge(what, raw, ok):
        nonlocal passed
        status, hung = exchange(port, raw)
        verdict = ok(status, hung)
        if verdict is None:
            passed += 1
        else:
            failures.append(f"{what}: {verdict} (status {status}, hung {hung})")

    def token_ok(expect_valid):
        def check(status, hung):
            if hung:
                return "no answer"
            if status is None:
                return "closed without a response"
            if status >= 500:
                return "5xx from the auth path"
            if expect_valid is None:
                return None
            if status == 200 and not expect_valid:
                return "INVALID TOKEN ACCEPTED"
            if status != 200 and expect_valid:
                return "valid token refused"
            return None
        return check

    def malformed_ok(status, hung):
        if hung:
            return "no answer"
        if status is not None and status >= 500:
            return "5xx for a malformed request"
        return None

    for i in range(count):
        if i % 500 == 0:
            judge("health", get("/hs/health", {"Authorization": f"Bearer {valid[0]}"}), token_ok(True))
        r = rng.random()
        if r < 0.05:
            tok = rng.choice(valid)
            place = rng.randrange(2)
            raw = get("/hs/x", {"Authorization": f"Bearer {tok}"}) if place == 0 else get(f"/hs/x?jwt={tok}", {})
            judge("valid", raw, token_ok(True))
        elif r < 0.15 and named:
            name, tok = rng.choice(named)
            if name.endswith("/missing"):
                raw = get("/hs/x", {})
            elif name.endswith("/duplicate"):
                a, _, b = tok.partition(" ")
                raw = get(f"/hs/x?jwt={b or a}", {"Authorization": f"Bearer {a}"})
            else:
                raw = get("/hs/x", {"Authorization": f"Bearer {tok}"})
            # An oversized token is valid, only large: accepted, or refused
            # as too large (4xx), never a 5xx.
            judge(name, raw, token_ok(None) if name.endswith("/oversized") else token_ok(False))
        elif r < 0.67:
            tok = mutate(rng, rng.choice(valid), pub_pem)
            if tok in valid:
                continue
            scheme = rng.choice(["Bearer ", "bearer ", "Bearer  ", "Basic ", ""])
            if rng.random() < 0.2:
                raw = get(f"/hs/x?jwt={tok}", {})
            else:
                raw = get("/hs/x", {"Authorization": scheme + tok})
            judge(f"mutated token {tok[:60]!r}", raw, token_ok(False))
        else:
            raw = malformed(rng)
            judge(f"malformed {raw[:60]!r}", raw, malformed_ok)
    judge("health", get("/hs/health", {"Authorization": f"Bearer {valid[1]}"}), token_ok(True))
    print(f"{passed} passed, {len(failures)} failed")
    for f in failures[:20]:
        print("  FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
