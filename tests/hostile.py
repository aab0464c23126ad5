#!/usr/bin/python3
"""hostile.py -- the attacks of tests/suite_hostile.sh, on loopback, one per subcommand.

Each subcommand attacks a running `rerank serve` on 127.0.0.1:PORT, prints one line saying what it
measured and exits 0 when the server held, 1 when it did not. Every loop is bounded by a count and
every socket by a timeout, so a server that hangs fails the test instead of hanging the suite.
"""
import os
import resource
import socket
import subprocess
import sys
import time

HOST = "127.0.0.1"
OTHER = "127.0.0.2"  # a second client address (all of 127/8 is loopback on Linux)

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))


def connect(port, src=None, timeout=2.0):
    s = socket.socket()
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((HOST, port))
    return s


def read_all(s, limit=5.0):
    """Everything the server sends until it closes (or `limit` seconds): (bytes, closed?)."""
    buf, t0 = b"", time.time()
    s.settimeout(0.2)
    while time.time() - t0 < limit:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return buf, True
        if not d:
            return buf, True
        buf += d
    return buf, False


def request(port, raw, src=None, timeout=3.0):
    """Sends raw bytes, returns (status, headers+body bytes, seconds) of the first answer."""
    t0 = time.time()
    s = connect(port, src, timeout)
    try:
        s.sendall(raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v.strip())
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
        return status, head + b"\r\n\r\n" + body, time.time() - t0
    except (socket.timeout, OSError):
        return 0, b"", time.time() - t0
    finally:
        s.close()


def health(port, src=None, timeout=1.0):
    st, _, dt = request(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", src, timeout)
    return st, dt


def post(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def close_wait(port):
    out = subprocess.run(["ss", "-tanH", "state", "close-wait", "( sport = :%d )" % port],
                         capture_output=True, text=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def done(ok, msg):
    print(("held: " if ok else "FAILED: ") + msg)
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------- attacks

def half_sent(port, n=6000):
    """n connections that send part of a request and close, one after another."""
    parts = [b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Le",
             b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"query\":",
             b"GET /hea"]
    before = close_wait(port)
    t0, refused = time.time(), 0
    for i in range(n):
        try:
            s = connect(port, timeout=2.0)
            s.sendall(parts[i % 3])
            s.close()
        except OSError:
            refused += 1  # refused under load is fine; the question is whether the server recovers
    sent = time.time() - t0
    time.sleep(1.0)
    st, dt = health(port, timeout=1.0)
    cw = close_wait(port)
    done(st == 200 and cw <= before + 16,
         "%d half-sent connections in %.1fs (%d refused); then /health %s in %.2fs; CLOSE-WAIT %d -> %d"
         % (n, sent, refused, st or "timed out", dt, before, cw))


def slowloris(port, n=4100):
    """n idle connections from 127.0.0.1 (half a header line each); requests from 127.0.0.2 must
    still be answered within a second."""
    socks = []
    for _ in range(n):
        try:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((HOST, port))
            except BlockingIOError:
                pass
            socks.append(s)
        except OSError:
            break
    time.sleep(1.0)
    for s in socks:
        try:
            s.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        except OSError:
            pass
    time.sleep(1.0)
    worst, fails = 0.0, 0
    for _ in range(5):
        st, dt = health(port, OTHER, timeout=1.0)
        worst = max(worst, dt)
        fails += st != 200
    st, _, dt = request(port, post(b"/v1/rerank", b'{"query":"q","documents":["a","b"]}'), OTHER, 2.0)
    for s in socks:
        s.close()
    done(fails == 0 and st == 200,
         "%d idle connections from %s; /health from %s: %d/5 answered, slowest %.2fs; rerank %s in %.2fs"
         % (len(socks), HOST, OTHER, 5 - fails, worst, st or "timed out", dt))


def trickle(port, limit, part="header"):
    """Headers (or a body) sent one byte every 0.5 s must be cut at the deadline (`limit` seconds)."""
    s = connect(port, timeout=1.0)
    if part == "header":
        data = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200
    else:
        s.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n")
        data = b'{"query":"' + b"a" * 280
    t0, closed = time.time(), False
    for b in data:
        if time.time() - t0 > limit + 5:
            break
        try:
            s.send(bytes([b]))
            s.settimeout(0.5)
            if s.recv(1) == b"":
                closed = True
                break
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
    dt = time.time() - t0
    s.close()
    done(closed and dt < limit + 2, "a %s trickled at 2 bytes/s: %s after %.1fs (deadline %gs)"
         % (part, "closed" if closed else "still open", dt, limit))


def idle(port, limit):
    """A keep-alive connection that goes quiet after one answer is closed after `limit` seconds."""
    s = connect(port)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = s.recv(4096)
    t0 = time.time()
    buf, closed = read_all(s, limit + 5)
    dt = time.time() - t0
    s.close()
    done(first.startswith(b"HTTP/1.1 200") and closed and limit - 0.5 < dt < limit + 2,
         "an idle keep-alive connection: %s after %.1fs (idle timeout %gs)" % ("closed" if closed else "open", dt, limit))


def slow_bodies(port, pid, cap_mb, extra_mb=0, n=400, size=2000000):
    """n connections each sending 95% of a `size`-byte body, then stalling. The server's RSS
    must stay under its RSS before + the cap + 64 MB (connection pools, thread stacks) + extra_mb."""
    base = rss_kb(pid)
    body = b"x" * int(size * 0.95)
    socks, refused = [], 0
    for i in range(n):
        try:
            s = connect(port, "127.0.0.%d" % (10 + i % 4), timeout=0.5)
            s.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            socks.append(s)
        except OSError:
            refused += 1
    peak = base
    for s in socks:
        try:
            s.settimeout(0.5)
            s.sendall(body)
        except OSError:
            pass
        peak = max(peak, rss_kb(pid))
    time.sleep(1.0)
    peak = max(peak, rss_kb(pid))
    st, dt = health(port, OTHER, timeout=1.0)
    for s in socks:
        s.close()
    limit = base + (cap_mb + 64 + extra_mb) * 1024
    done(peak <= limit and st == 200,
         "%d slow %.0f MB bodies: RSS %.0f -> %.0f MB (limit %.0f MB = before + cap %d MB + %d); /health %s"
         % (len(socks), size / 1e6, base / 1024, peak / 1024, limit / 1024, cap_mb, 64 + extra_mb,
            st or "timed out"))


def stuck(port, n=20):
    """Opens n stuck connections (headers, half a body; half a header) and keeps them open for 30 s
    (the suite sends SIGTERM meanwhile). Prints "ready" once they are all open."""
    socks = []
    for i in range(n):
        s = connect(port)
        if i % 2:
            s.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"query\":")
        else:
            s.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Le")
        socks.append(s)
    print("ready", flush=True)
    time.sleep(30)


def framing(port):
    """Conflicting framing is refused with one 400 and a closed connection; nothing hidden in the
    body is answered."""
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    cases = {
        "two Content-Length": b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: %d\r\n\r\n{}"
                              % (2 + len(smuggled)) + smuggled,
        "Content-Length + chunked": b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(smuggled)) + smuggled,
        "two Authorization": b"GET /info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
    }
    bad = []
    for name, raw in cases.items():
        s = connect(port)
        s.sendall(raw)
        buf, closed = read_all(s, 3.0)
        s.close()
        n_status = buf.count(b"HTTP/1.1 ")
        if not (buf.startswith(b"HTTP/1.1 400") and n_status == 1 and closed):
            bad.append("%s: %d answers, %s, %r" % (name, n_status, "closed" if closed else "left open", buf[:60]))
    # Two requests libmicrohttpd 0.9.75 rejects itself, before the server sees them, and in a way no
    # option of that version changes (docs/ARCHITECTURE.md, HTTP): a malformed Content-Length gets a
    # 400 whose status line and headers are written twice (one body), and a request line without a
    # space is closed with no answer. What must hold: at most that, the connection closed within
    # 1 s, alone or after an answered keep-alive request, and the server healthy afterwards.
    bad_cl = b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}"
    ok_req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    # garbage request lines: without a space (closed unanswered), and binary with one (a 400)
    no_space = (b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\x00\r\n\r\n",
                b"\x16\x03\x01\x00\xa5\x01\x00 \x00\r\n\r\n")
    def exchange(first, raw):
        """(the answer to raw, closed?, seconds) on one connection that sent `first` before it (its
        200 checked and cut off)."""
        s = connect(port)
        s.sendall(first + raw)
        t0 = time.time()
        buf, closed = read_all(s, 3.0)
        dt = time.time() - t0
        s.close()
        if first:
            if not buf.startswith(b"HTTP/1.1 200"):
                bad.append("keep-alive request before %r: %r" % (raw[:8], buf[:40]))
            buf = buf[buf.find(b"HTTP/1.1 ", 1):] if buf.count(b"HTTP/1.1 ") > 1 else b""
        return buf, closed, dt

    twice = False
    for first in (b"", ok_req):
        tag = " after a keep-alive request" if first else ""
        buf, closed, dt = exchange(first, bad_cl)
        n = buf.count(b"HTTP/1.1 ")
        twice |= n == 2
        if not (buf.startswith(b"HTTP/1.1 400") and n <= 2 and closed and dt < 1.0):
            bad.append("bad Content-Length%s: %d answers, %r, %s after %.1fs" % (
                tag, n, buf[:40], "closed" if closed else "left open", dt))
        for raw in no_space:
            buf, closed, dt = exchange(first, raw)
            if not closed or dt > 1.0 or (buf and not buf.startswith(b"HTTP/1.1 400")):
                bad.append("garbage %r%s: %r after %.1fs, %s" % (raw[:8], tag, buf[:40], dt,
                                                               "closed" if closed else "left open"))
    st, _ = health(port)
    if st != 200:
        bad.append("/health after the malformed requests: %d" % st)
    done(not bad, "framing: " + ("; ".join(bad) if bad else "conflicting framing one 400 and closed, malformed "
                                 "requests closed within 1 s, /health 200") +
         (" (a bad Content-Length is answered twice, by libmicrohttpd)" if twice else ""))


def expect(port, key):
    """With Expect: 100-continue, a bad key or an oversized body is answered before any upload."""
    bad = []
    cases = [("bad key", b"Authorization: Bearer wrong\r\n", 100, 401),
             ("too large", b"Authorization: Bearer " + key.encode() + b"\r\n", 50000000, 413)]
    for name, auth, size, want in cases:
        s = connect(port)
        s.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\n" + auth +
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % size)
        buf, closed = read_all(s, 2.0)
        s.close()
        if b"100 Continue" in buf or not buf.startswith(b"HTTP/1.1 %d" % want):
            bad.append("%s: %r" % (name, buf[:50]))
    # a good request with Expect still gets its 100 Continue and its answer
    s = connect(port)
    body = b'{"query":"q","documents":["a"]}'
    s.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() +
              b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    first = s.recv(100)
    s.sendall(body)
    rest, _ = read_all(s, 2.0)
    s.close()
    if not first.startswith(b"HTTP/1.1 100") or b"HTTP/1.1 200" not in first + rest:
        bad.append("good request: %r %r" % (first[:30], rest[:30]))
    done(not bad, "100-continue: " + ("; ".join(bad) if bad else "401 and 413 before the upload, 100 for a good one"))


def json_cases(port):
    """Every lenient-JSON case is a 400/422 naming where the fault is."""
    cases = [
        (b'{"query":"q","documents":["a\\u0000b"]}', b"documents[0]"),
        (b'{"query":"q","documents":["a\x00b"]}', b"documents[0]"),
        (b'{"query":"q","documents":["a"]}garbage', b"trailing data"),
        (b'{"query":"q","documents":["a"]}{"query":"x","documents":["b"]}', b"second JSON value"),
        (b'{"query":"q","documents":["a\x01b"]}', b"documents[0]"),
        (b'{"query":"q","documents":[{"text":"a\nb"}]}', b"documents[0].text"),
        (b'{"query":"q","query":"x","documents":["a"]}', b"query"),
        (b'{"query":"q","documents":[{"text":"a","text":"b"}]}', b"documents[0].text"),
    ]
    bad = []
    for body, where in cases:
        st, out, _ = request(port, post(b"/v1/rerank", body))
        if st not in (400, 422) or where not in out:
            bad.append("%r -> %s %r" % (body[:40], st, out[-120:]))
    done(not bad, "JSON: " + ("; ".join(bad) if bad else "%d cases, each 400/422 with its path" % len(cases)))


def abort_one(port):
    """One request that sends half its body and hangs up."""
    s = connect(port)
    s.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"query\":")
    time.sleep(0.3)
    s.close()
    time.sleep(0.5)
    print("sent")


if __name__ == "__main__":
    cmd, port = sys.argv[1], int(sys.argv[2])
    args = sys.argv[3:]
    if cmd == "half_sent":
        half_sent(port, int(args[0]) if args else 6000)
    elif cmd == "slowloris":
        slowloris(port, int(args[0]) if args else 4100)
    elif cmd == "trickle":
        trickle(port, float(args[0]), args[1] if len(args) > 1 else "header")
    elif cmd == "idle":
        idle(port, float(args[0]))
    elif cmd == "slow_bodies":
        slow_bodies(port, int(args[0]), int(args[1]), int(args[2]) if len(args) > 2 and args[2] else 0)
    elif cmd == "stuck":
        stuck(port)
    elif cmd == "framing":
        framing(port)
    elif cmd == "expect":
        expect(port, args[0])
    elif cmd == "json":
        json_cases(port)
    elif cmd == "abort_one":
        abort_one(port)
    elif cmd == "health":
        st, dt = health(port, timeout=1.0)
        sys.exit(0 if st == 200 else 1)
    else:
        sys.exit("unknown attack " + cmd)
