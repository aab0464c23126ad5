#!/usr/bin/python3
"""hub_mock.py -- a local stand-in for the Hugging Face hub's `resolve` URLs, for tests.

Two threaded HTTP servers on 127.0.0.1 (free ports): the hub, and a separate "CDN" that LFS files
redirect to, as huggingface.co redirects to its CDN. It answers the way the real hub does:

  HEAD|GET /ORG/NAME/resolve/REV/FILE
    small files   200 with ETag (the git blob sha1), X-Repo-Commit, Content-Length
    LFS files     302 to the CDN with X-Linked-Etag (sha256), X-Linked-Size, X-Repo-Commit
    unknown repo  404 X-Error-Code: RepoNotFound
    small files of repos in `relative`: 307 to /api/resolve-cache/... (relative), then 200 as above
    unknown rev   404 X-Error-Code: RevisionNotFound
    missing file  404 X-Error-Code: EntryNotFound (with X-Repo-Commit)
    gated repo    401 X-Error-Code: GatedRepo unless "Authorization: Bearer <token>"
  GET /cdn/SHA256 on the CDN: the bytes, Range requests answered 206; refuses (400) any request
    that carries Authorization (it must never be forwarded to another host).

Fault modes (set from the test): cut the next K CDN transfers after N bytes (headers announce the
whole length, then the connection closes), serve corrupted bytes, ignore Range (200 with the whole file). It counts the body bytes the CDN
served, per request, so a test can prove a resume did not fetch the completed part again.

Usage from Python: m = Mock({"org/name": "/dir/with/files"}, gated={"org/gated"}, token="t");
m.start(); ... m.stop(). Standalone: hub_mock.py --repo org/name=DIR [--gated org/x --token T]
(prints the endpoint, exits after --timeout seconds).
"""
import argparse
import hashlib
import http.server
import os
import sys
import threading
import time
import urllib.parse


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, name, folder):
        self.name = name
        self.commit = hashlib.sha1(("commit of " + name).encode()).hexdigest()
        self.files = {}  # relative name -> bytes
        for root, _, names in os.walk(folder):
            for n in names:
                p = os.path.join(root, n)
                rel = os.path.relpath(p, folder).replace(os.sep, "/")
                with open(p, "rb") as f:
                    self.files[rel] = f.read()

    @staticmethod
    def is_lfs(name, data):
        return name.endswith((".safetensors", ".bin")) or len(data) > 100_000

    def etag(self, name):
        data = self.files[name]
        return hashlib.sha256(data).hexdigest() if self.is_lfs(name, data) else git_blob_sha1(data)


class Mock:
    def __init__(self, repos, gated=(), token=None, relative=()):
        self.repos = {k: Repo(k, v) for k, v in repos.items()}
        self.relative = set(relative)  # repos whose small files go through a relative redirect
        self.gated = set(gated)
        self.token = token
        self.lock = threading.Lock()
        self.blobs = {}  # sha256 -> bytes
        for r in self.repos.values():
            for n, d in r.files.items():
                if Repo.is_lfs(n, d):
                    self.blobs[hashlib.sha256(d).hexdigest()] = d
        self.reset()

    def reset(self):
        with self.lock:
            self.cut_after = None  # bytes
            self.cut_times = 0
            self.corrupt = False
            self.ignore_range = False  # answer 200 with the whole file to a Range request
            self.cdn_bytes = 0
            self.cdn_requests = []  # (range start, bytes served, status)
            self.hub_requests = 0
            self.auth_on_cdn = 0

    def start(self):
        mock = self

        class Quiet(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

        class Hub(Quiet):
            def do_HEAD(self):
                self.resolve(head=True)

            def do_GET(self):
                self.resolve(head=False)

            def fail(self, code, error_code, commit=None):
                body = ("%s\n" % error_code).encode()
                self.send_response(code)
                self.send_header("X-Error-Code", error_code)
                self.send_header("X-Error-Message", error_code)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def resolve(self, head):
                with mock.lock:
                    mock.hub_requests += 1
                path = urllib.parse.urlsplit(self.path).path
                parts = path.lstrip("/").split("/")
                if path.startswith("/api/resolve-cache/models/"):
                    # /api/resolve-cache/models/ORG/NAME/COMMIT/FILE -> ORG/NAME/cache/COMMIT/FILE
                    parts = parts[3:5] + ["cache"] + parts[5:]
                if len(parts) < 5 or parts[2] not in ("resolve", "cache"):
                    return self.fail(404, "NotFound")
                repo_id = parts[0] + "/" + parts[1]
                rev = urllib.parse.unquote(parts[3])
                name = urllib.parse.unquote("/".join(parts[4:]))
                repo = mock.repos.get(repo_id)
                if repo is None:
                    return self.fail(404, "RepoNotFound")
                if repo_id in mock.gated and self.headers.get("Authorization") != "Bearer %s" % mock.token:
                    return self.fail(401, "GatedRepo")
                if rev not in ("main", repo.commit):
                    return self.fail(404, "RevisionNotFound")
                if name not in repo.files:
                    return self.fail(404, "EntryNotFound", repo.commit)
                data = repo.files[name]
                etag = repo.etag(name)
                if repo_id in mock.relative and parts[2] == "resolve" and not Repo.is_lfs(name, data):
                    # the hub sends small files through a relative redirect to its resolve cache
                    self.send_response(307)
                    self.send_header("Location", "/api/resolve-cache/models/%s/%s/%s" % (repo_id, repo.commit, name))
                    self.send_header("X-Repo-Commit", repo.commit)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if Repo.is_lfs(name, data):
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:%d/cdn/%s" % (mock.cdn_port, etag))
                    self.send_header("X-Linked-Etag", '"%s"' % etag)
                    self.send_header("X-Linked-Size", str(len(data)))
                    self.send_header("ETag", '"%s"' % etag)
                    self.send_header("X-Repo-Commit", repo.commit)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", '"%s"' % etag)
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

        class Cdn(Quiet):
            def do_GET(self):
                if self.headers.get("Authorization"):
                    with mock.lock:
                        mock.auth_on_cdn += 1
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                sha = urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[-1]
                data = mock.blobs.get(sha)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-") and not mock.ignore_range:
                    start = int(rng[6:-1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", "bytes */%d" % len(data))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                with mock.lock:
                    if mock.corrupt:
                        body = bytes([body[0] ^ 0xFF]) + body[1:] if body else body
                    cut = None
                    if mock.cut_times > 0 and mock.cut_after is not None:
                        mock.cut_times -= 1
                        cut = mock.cut_after
                self.send_response(status)
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                sent = body if cut is None else body[:cut]
                try:
                    self.wfile.write(sent)
                    self.wfile.flush()
                except OSError:
                    pass
                with mock.lock:
                    mock.cdn_bytes += len(sent)
                    mock.cdn_requests.append((start, len(sent), status))
                if cut is not None:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # a client that hangs up mid-transfer (disk full, cancelled) is expected
                if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
                    super().handle_error(request, client_address)

        self.cdn = Server(("127.0.0.1", 0), Cdn)
        self.cdn_port = self.cdn.server_address[1]
        self.hub = Server(("127.0.0.1", 0), Hub)
        self.port = self.hub.server_address[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        for s in (self.hub, self.cdn):
            threading.Thread(target=s.serve_forever, daemon=True).start()
        return self

    def stop(self):
        for s in (self.hub, self.cdn):
            s.shutdown()
            s.server_close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", action="append", default=[], help="ORG/NAME=FOLDER")
    ap.add_argument("--gated", action="append", default=[])
    ap.add_argument("--token")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    repos = dict(r.split("=", 1) for r in a.repo)
    m = Mock(repos, a.gated, a.token).start()
    print(m.endpoint, flush=True)
    time.sleep(a.timeout)
    m.stop()


if __name__ == "__main__":
    sys.exit(main())
