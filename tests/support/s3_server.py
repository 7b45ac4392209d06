"""nanio, the S3-compatible server the tests and the benchmark run, behind CORS.

nanio verifies SigV4 (header and presigned) and expiry, and has every call the s3
provider makes, but answers no CORS: a browser could not PUT a part to it. Real
buckets get a CORS rule; this wraps nanio's ASGI app in Starlette's CORSMiddleware
with the rule the README tells deployers to set (any origin, the methods the client
uses, any request header, ETag / Content-Range / Retry-After exposed).

Started by tests/support/s3.mjs with the venv from scripts/setup.sh:

    python s3_server.py            # env: NANIO_DATA_DIR, NANIO_ACCESS_KEY,
                                   #      NANIO_SECRET_KEY, NANIO_REGION

It binds 127.0.0.1 on a port the kernel picks, prints `{"port": N}` on one line of
stdout once the socket listens (so the caller never races for a free port), then
serves until SIGTERM.
"""

import json
import os
import socket
import sys
from pathlib import Path

import uvicorn
from nanio.app import build_app
from nanio.auth.credentials import EnvCredentialResolver
from nanio.config import Settings
from starlette.middleware.cors import CORSMiddleware


def app():
    settings = Settings(
        data_dir=Path(os.environ["NANIO_DATA_DIR"]).resolve(),
        region=os.environ.get("NANIO_REGION", "us-east-1"),
        credentials=EnvCredentialResolver(),
        access_log=False,
    )
    return CORSMiddleware(
        build_app(settings),
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
        allow_headers=["*"],
        # Retry-After too: a cross-origin script reads only exposed headers.
        expose_headers=["ETag", "Content-Range", "Retry-After"],
    )


def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(
        app(),
        log_level=os.environ.get("NANIO_LOG_LEVEL", "warning"),
        access_log=False,
        # Stalled test connections must not hold shutdown open.
        timeout_graceful_shutdown=1,
    )
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
