"""A real HTTP server for binary-cache tests: serves DIR on 127.0.0.1 with injected faults.

    python tests/cache_server.py DIR FAULTS_JSON

prints its port on stdout, then serves until killed. FAULTS_JSON maps a relative path to one of:
"404", "500", "truncate" (send half the body, then close; a later request is served in full),
"truncate-always", "wrong-bytes" (the right length of other bytes), "stall" (headers, then
silence). Range requests get 206 answers, so a client can resume.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(sys.argv[1])
FAULTS: dict[str, str] = json.loads(sys.argv[2])
SEEN: set[str] = set()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        relative = self.path.lstrip("/")
        fault = FAULTS.get(relative)
        if fault in ("404", "500"):
            self.send_error(int(fault))
            return
        file = ROOT / relative
        if not file.is_file():
            self.send_error(404)
            return
        body = file.read_bytes()
        start = _range_start(self.headers.get("Range"))
        if fault == "wrong-bytes":
            body = bytes(len(body))
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        first_time = relative not in SEEN
        SEEN.add(relative)
        if fault == "stall":
            time.sleep(3600)
        if fault == "truncate-always" or (fault == "truncate" and first_time):
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    return int(header[len("bytes=") :].split("-", 1)[0])


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
