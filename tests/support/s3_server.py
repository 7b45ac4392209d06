"""nanio, the S3-compatible server the tests and the benchmark run, behind CORS,
with UploadPart made atomic and Complete as strict on part sizes as S3 and R2 (see
upload_part and complete below).

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

import asyncio
import json
import os
import socket
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from nanio.app import build_app
from nanio.auth.credentials import EnvCredentialResolver
from nanio.config import Settings
from nanio.errors import EntityTooSmall, InvalidPart, NoSuchUpload
from nanio.etag import StreamingMd5
from nanio.storage.multipart import MultipartManager, PartInfo
from nanio.storage.paths import multipart_dir, multipart_part_md5_path, multipart_part_path
from starlette.middleware.cors import CORSMiddleware


async def upload_part(self, upload_id, part_number, body):
    """nanio 0.1.7's UploadPart, made atomic the way S3's is.

    nanio streams every write of part N into one shared temp file, so two PUTs of
    the same part at once (a client's retry racing its first attempt) interleave
    their bytes and leave a part whose MD5 file names the other body (measured:
    5 times in 5, one PUT answered 500). Here each request streams into a temp file of its own, and the
    part and its MD5 are swapped in with no await between them, so every other
    request sees one whole body with its own ETag: the last write wins, as in S3.
    A part whose upload was aborted meanwhile answers NoSuchUpload, as in S3.
    """
    if part_number < 1 or part_number > 10_000:
        raise InvalidPart(f"part number out of range: {part_number}")
    if not multipart_dir(self._data_dir, upload_id).is_dir():
        raise NoSuchUpload(resource=upload_id)
    target = multipart_part_path(self._data_dir, upload_id, part_number)
    md5_target = multipart_part_md5_path(self._data_dir, upload_id, part_number)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
    hasher = StreamingMd5()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        try:
            async for chunk in body:
                if chunk:
                    await asyncio.to_thread(os.write, fd, chunk)
                    hasher.update(chunk)
        finally:
            os.fsync(fd)
            os.close(fd)
        # No await from here on: the part and its MD5 change together.
        os.replace(tmp, target)
        md5_target.write_text(hasher.hexdigest())
    except FileNotFoundError as exc:  # the upload was aborted while the body streamed
        tmp.unlink(missing_ok=True)
        raise NoSuchUpload(resource=upload_id) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PartInfo(
        part_number=part_number,
        etag=hasher.quoted_etag(),
        size=hasher.size,
        last_modified=datetime.now(tz=UTC),
    )


MIN_PART_SIZE = 5 * 1024 * 1024
nanio_complete = MultipartManager.complete


def complete(self, upload_id, client_parts):
    """nanio's CompleteMultipartUpload, refusing the part sizes real storage refuses.

    nanio completes any sizes. AWS S3 refuses a part but the last under 5 MiB
    (EntityTooSmall) and R2 one whose size differs from the others' (all but the
    last must be equal), so a planner mistake would pass here and fail in
    production: check both, as the stricter of the two would.
    """
    parts = list(client_parts)
    sizes = []
    for part_number, _ in parts:
        path = multipart_part_path(self._data_dir, upload_id, part_number)
        sizes.append(path.stat().st_size if path.is_file() else None)
    leading = [size for size in sizes[:-1] if size is not None]
    if any(size < MIN_PART_SIZE for size in leading):
        raise EntityTooSmall("every part but the last must be at least 5 MiB")
    if len(set(leading)) > 1 or (leading and sizes[-1] is not None and sizes[-1] > leading[0]):
        raise InvalidPart("every part but the last must have the same size, and the last no more (R2)")
    return nanio_complete(self, upload_id, parts)


MultipartManager.upload_part = upload_part
MultipartManager.complete = complete


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
