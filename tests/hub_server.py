"""A tiny Hugging Face Hub-compatible server for tests (no network needed).

It speaks just enough of the Hub's HTTP API for the real huggingface_hub client:
``hf_hub_download`` (HEAD/GET /<repo>/resolve/<rev>/<path>), ``create_repo``,
``create_branch`` and ``upload_folder`` (preupload says "regular", so files arrive
inline in the NDJSON commit), and, for ``datasets.load_dataset`` of a dataset repo, the
repo info, tree and paths-info calls. Point a process at it with HF_ENDPOINT=<url>.

    python tests/hub_server.py --port 8765   # standalone, for trying things by hand
"""
import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class Hub:
    def __init__(self):
        self.repos = {}  # repo_id -> {"refs": {name: commit}, "commits": {commit: {path: bytes}}}
        self.lock = threading.Lock()

    def create(self, repo_id):
        with self.lock:
            if repo_id in self.repos:
                return False
            self.repos[repo_id] = {"refs": {"main": "0" * 40}, "commits": {"0" * 40: {}}}
            return True

    def commit(self, repo_id, revision, files: dict, deleted=()):
        with self.lock:
            repo = self.repos[repo_id]
            parent = repo["refs"].get(revision, repo["refs"]["main"])
            tree = {**repo["commits"][parent], **files}
            for path in deleted:
                tree.pop(path, None)
            sha = hashlib.sha1(json.dumps(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in tree.items()))
                               .encode() + parent.encode()).hexdigest()
            repo["commits"][sha] = tree
            repo["refs"][revision] = sha
            return sha

    def tag(self, repo_id, name, revision="main"):
        with self.lock:
            repo = self.repos[repo_id]
            repo["refs"][name] = repo["refs"][revision]

    def resolve(self, repo_id, revision):
        repo = self.repos.get(repo_id)
        if repo is None:
            return None, None
        sha = repo["refs"].get(revision, revision if revision in repo["commits"] else None)
        return sha, (repo["commits"].get(sha) if sha else None)


def make_handler(hub: Hub, base_url_holder: list):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _json(self, code, obj, headers=None):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def _api_get(self, parts):
            """GET /api/datasets/<ns>/<name>/revision/<rev> and .../tree/<rev>[/<path>]"""
            repo_id, action = f"{parts[2]}/{parts[3]}", parts[4] if len(parts) > 4 else "revision"
            revision = parts[5] if len(parts) > 5 else "main"
            sha, tree = hub.resolve(repo_id, revision)
            if sha is None:
                return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepositoryNotFound"})
            if tree is None:
                return self._json(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
            if action == "revision":
                return self._json(200, {"id": repo_id, "sha": sha, "private": False, "disabled": False,
                                        "gated": False, "tags": [], "lastModified": "2026-01-01T00:00:00.000Z",
                                        "siblings": [{"rfilename": p} for p in sorted(tree)]})
            if action == "tree":
                prefix = "/".join(parts[6:])
                return self._json(200, self._entries(tree, prefix, recursive="recursive=true" in self.path.lower()))
            return self._json(404, {"error": f"not implemented: GET {self.path}"})

        @staticmethod
        def _entries(tree, prefix, recursive):
            base = f"{prefix}/" if prefix else ""
            out, dirs = [], set()
            for path in sorted(tree):
                if not path.startswith(base):
                    continue
                rest = path[len(base):].split("/")
                for depth in range(1, len(rest)):
                    d = base + "/".join(rest[:depth])
                    if (recursive or depth == 1) and d not in dirs:
                        dirs.add(d)
                        out.append({"type": "directory", "path": d, "oid": "0" * 40})
                if recursive or len(rest) == 1:
                    data = tree[path]
                    out.append({"type": "file", "path": path, "size": len(data),
                                "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()})
            return out

        def _resolve_file(self):
            parts = unquote(urlparse(self.path).path).strip("/").split("/")
            if parts[:2] == ["api", "datasets"] and self.command == "GET":
                return self._api_get(parts)
            if parts and parts[0] in ("datasets", "spaces"):  # /datasets/<ns>/<name>/resolve/...
                parts = parts[1:]
            if "resolve" not in parts:
                return self._json(404, {"error": "not found"})
            i = parts.index("resolve")
            repo_id, revision, path = "/".join(parts[:i]), parts[i + 1], "/".join(parts[i + 2:])
            sha, tree = hub.resolve(repo_id, revision)
            if sha is None:
                return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepositoryNotFound"})
            if tree is None:
                return self._json(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
            if path not in tree:
                return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound",
                                                                      "X-Repo-Commit": sha})
            data = tree[path]
            self.send_response(200)
            self.send_header("X-Repo-Commit", sha)
            self.send_header("ETag", '"%s"' % hashlib.sha256(data).hexdigest())
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(data)

        do_HEAD = do_GET = _resolve_file

        def do_POST(self):
            path = unquote(urlparse(self.path).path)
            body = self._body()
            if path == "/api/repos/create":
                req = json.loads(body)
                repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
                if not hub.create(repo_id):
                    return self._json(409, {"error": "You already created this model repo",
                                            "url": f"{base_url_holder[0]}/{repo_id}"})
                return self._json(200, {"url": f"{base_url_holder[0]}/{repo_id}"})
            if path == "/api/validate-yaml":  # the client checks a README's front matter first
                import yaml

                try:
                    yaml.safe_load(json.loads(body)["content"].split("---")[1])
                except Exception as e:
                    return self._json(400, {"error": f"invalid YAML front matter: {e}"})
                return self._json(200, {"errors": [], "warnings": []})
            parts = path.strip("/").split("/")  # api, models, ns, name, action, revision
            if len(parts) >= 6 and parts[0] == "api" and parts[1] in ("models", "datasets", "spaces"):
                repo_id, action, revision = f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:])
                if repo_id not in hub.repos:
                    return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepositoryNotFound"})
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                if action == "commit":
                    files, deleted = {}, []
                    for line in body.decode().splitlines():
                        if not line.strip():
                            continue
                        item = json.loads(line)
                        if item["key"] == "file":
                            files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        elif item["key"] == "deletedFile":
                            deleted.append(item["value"]["path"])
                        elif item["key"] == "lfsFile":
                            return self._json(400, {"error": "this test hub takes regular files only"})
                    sha = hub.commit(repo_id, revision, files, deleted)
                    return self._json(200, {"commitUrl": f"{base_url_holder[0]}/{repo_id}/commit/{sha}",
                                            "commitOid": sha, "pullRequestUrl": None})
                if action == "paths-info":
                    from urllib.parse import parse_qs

                    form = parse_qs(body.decode())
                    wanted = form.get("paths", [])
                    sha, tree = hub.resolve(repo_id, revision)
                    entries = self._entries(tree, "", recursive=True)
                    return self._json(200, [e for e in entries if e["path"] in wanted])
                if action == "branch":
                    hub.tag(repo_id, revision, json.loads(body or b"{}").get("startingPoint") or "main")
                    return self._json(200, {})
            return self._json(404, {"error": f"not implemented: POST {path}"})

    return Handler


def serve(port: int = 0):
    """Start in a background thread -> (hub, url, server). server.shutdown() stops it."""
    hub, holder = Hub(), [""]
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(hub, holder))
    holder[0] = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hub, holder[0], server


if __name__ == "__main__":
    import argparse
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8765)
    _, url, _ = serve(ap.parse_args().port)
    print(f"test hub at {url}  (HF_ENDPOINT={url})", flush=True)
    while True:
        time.sleep(3600)
