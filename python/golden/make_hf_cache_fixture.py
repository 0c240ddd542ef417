#!/usr/bin/env python3
"""A Hugging Face hub cache populated by huggingface_hub itself, for the tests of vcp-exp's
reader and writer of that cache (tests/model/clip/hf-cache.test.ts).

tests/fixtures/clip/hf-cache/ is the HF_HUB_CACHE after hf_hub_download() fetched every file of
assets/clip/tiny-clip as repository `test-org/tiny-clip`, revision main, from a local
stand-in of the Hub started here (the network is never used): HEAD/GET
/<repo>/resolve/<revision>/<file> answering as huggingface.co does — X-Repo-Commit, an ETag that
is the git blob sha1 for small files, and for model.safetensors (an LFS file) a 302 to a CDN URL
(another host name) with X-Linked-Size and X-Linked-Etag (its sha256). huggingface_hub then lays out
models--test-org--tiny-clip/{blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>,
refs/main} exactly as it does for any user; that is what the test reads.
Run: <python with huggingface_hub> python/golden/make_hf_cache_fixture.py
"""

import hashlib
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "assets" / "clip" / "tiny-clip"
OUT = ROOT / "tests" / "fixtures" / "clip" / "hf-cache"
REPO = "test-org/tiny-clip"
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
LFS = {"model.safetensors"}
FILES = sorted(p.name for p in SOURCE.iterdir() if p.is_file())


class Hub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, body_too):
        path = self.path.split("?")[0]
        prefix = f"/{REPO}/resolve/main/"
        cdn = f"/cdn/{COMMIT}/"
        if path.startswith(cdn) and path[len(cdn):] in LFS:
            data = (SOURCE / path[len(cdn):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body_too:
                self.wfile.write(data)
            return
        name = path[len(prefix):] if path.startswith(prefix) else None
        if name not in FILES:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = (SOURCE / name).read_bytes()
        if name in LFS:
            self.send_response(302)
            # Another host name, as the Hub's CDN is: huggingface_hub reads the metadata from this
            # 302 instead of following it.
            self.send_header("Location", f"http://localhost:{self.server.server_port}{cdn}{name}")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        git_sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        self.send_header("ETag", f'"{git_sha1}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body_too:
            self.wfile.write(data)

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if OUT.exists():
        shutil.rmtree(OUT)
    os.environ.update(HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    from huggingface_hub import __version__, hf_hub_download

    endpoint = f"http://127.0.0.1:{server.server_port}"
    for name in FILES:
        path = hf_hub_download(REPO, name, revision="main", cache_dir=str(OUT), endpoint=endpoint)
        assert Path(path).read_bytes() == (SOURCE / name).read_bytes(), name
    server.shutdown()
    shutil.rmtree(OUT / ".locks", ignore_errors=True)  # lock files of the download, not the layout
    print(f"huggingface_hub {__version__}: {len(FILES)} files of {REPO} cached in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
