#!/usr/bin/python3
"""scaleout_client.py -- the load of tests/suite_scaleout.sh: N client threads, each on its own
keep-alive connection to the nginx pool, send POST /v1/rerank until the file STOP exists (or for
at most SECONDS), cycling through the
prepared requests, each with a unique X-Request-Id. Every answer is checked against the expected
ranking (computed beforehand with `rerank rank`): indices in order and scores equal.

usage: scaleout_client.py HOST:PORT CASES.json SECONDS CLIENTS OUT.json STOP
CASES.json: [{"body": {...}, "expect": [{"index", "relevance_score"}, ...]}, ...]
OUT.json:   {"sent", "ok", "ids": [...], "failures": [the first 20 problems]}
A request that gets no answer (connection error) counts as a failure, never silently retried here:
retrying is nginx's job.
"""
import http.client
import json
import os
import sys
import threading
import time

host, port = sys.argv[1].rsplit(":", 1)
cases = json.load(open(sys.argv[2]))
seconds, n_clients, out_path, stop_path = float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
bodies = [json.dumps(c["body"]).encode() for c in cases]
deadline = time.monotonic() + seconds
lock = threading.Lock()
sent, ok, ids, failures = 0, 0, [], []


def check(k, status, data):
    if status != 200:
        return "status %d: %s" % (status, data[:200])
    try:
        res = json.loads(data)["results"]
    except Exception as e:  # noqa: BLE001 -- any malformed answer is a failure to report
        return "bad JSON (%s): %s" % (e, data[:200])
    want = cases[k]["expect"]
    if [r["index"] for r in res] != [w["index"] for w in want]:
        return "ranking %s != %s" % ([r["index"] for r in res], [w["index"] for w in want])
    for r, w in zip(res, want):
        if r["relevance_score"] != w["relevance_score"]:
            return "score %r != %r (index %d)" % (r["relevance_score"], w["relevance_score"], w["index"])
    return None


def client(t):
    global sent, ok
    conn = None
    n = 0
    while time.monotonic() < deadline and not os.path.exists(stop_path):
        k = (t + n) % len(bodies)
        rid = "c%02d-%05d" % (t, n)
        n += 1
        err = None
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            conn.request("POST", "/v1/rerank", body=bodies[k],
                         headers={"Content-Type": "application/json", "X-Request-Id": rid})
            r = conn.getresponse()
            data = r.read().decode("utf-8", "replace")
            err = check(k, r.status, data)
            if r.getheader("X-Request-Id") != rid:
                err = err or "X-Request-Id %r came back as %r" % (rid, r.getheader("X-Request-Id"))
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # noqa: BLE001 -- a lost request, whatever the reason
            err = "no answer: %r" % (e,)
            if conn is not None:
                conn.close()
            conn = None
        with lock:
            sent += 1
            ids.append(rid)
            if err is None:
                ok += 1
            elif len(failures) < 20:
                failures.append("%s (case %d): %s" % (rid, k, err))
    if conn is not None:
        conn.close()


threads = [threading.Thread(target=client, args=(t,)) for t in range(n_clients)]
for th in threads:
    th.start()
for th in threads:
    th.join()
json.dump({"sent": sent, "ok": ok, "ids": ids, "failures": failures}, open(out_path, "w"))
print("clients: %d requests sent, %d answered 200 with the expected ranking" % (sent, ok))
