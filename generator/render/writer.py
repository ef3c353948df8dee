"""Write a site into a staging folder, rewriting only pages whose inputs changed,
then swap it into place so a failed build leaves the previous site untouched.

The staging folder starts as a hard-linked copy of the last good site. A page is
written to a temporary name and renamed over its old path, which breaks the
hard link: the last good site never sees a half-written file. The manifest maps
every path to the digest of its inputs; a path whose digest is unchanged is not
rendered at all, which is what makes a one-reply rebuild fast.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

MANIFEST = ".wenzheng-manifest.json.gz"


def digest(*parts: object) -> str:
    """Return a short, stable digest of the reprs of ``parts``."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(repr(part).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def gzip_bytes(data: bytes) -> bytes:
    """Return ``data`` gzipped with no timestamp or name, so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


class SiteWriter:
    """Collects the pages of one build in a staging folder next to ``out``."""

    def __init__(self, out: Path):
        self.out = out
        self.staging = out.with_name(f".{out.name}.staging")
        self.old_manifest: dict[str, str] = {}
        self.manifest: dict[str, str] = {}
        self.written = 0
        self.skipped = 0

    # -- set up ---------------------------------------------------------------

    def start(self) -> None:
        """Make the staging folder: a hard-linked copy of the last good site."""
        if self.staging.exists():
            shutil.rmtree(self.staging)
        if (self.out / MANIFEST).is_file():
            subprocess.run(["cp", "-al", str(self.out), str(self.staging)], check=True)
            raw = (self.out / MANIFEST).read_bytes()
            self.old_manifest = json.loads(gzip.decompress(raw))
        else:
            self.staging.mkdir(parents=True)

    # -- writing ----------------------------------------------------------------

    def page(self, path: str, key: str, render: Callable[[], str | bytes]) -> bool:
        """Write ``path`` from ``render()`` unless its input digest ``key`` is unchanged.

        Returns True when the file was (re)written.
        """
        self.manifest[path] = key
        if self.old_manifest.get(path) == key and (self.staging / path).exists():
            self.skipped += 1
            return False
        content = render()
        self._write(path, content.encode("utf-8") if isinstance(content, str) else content)
        self.written += 1
        return True

    def file(self, path: str, content: str | bytes) -> bool:
        """Write ``path`` with ``content``, keyed by the content itself."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        return self.page(path, hashlib.blake2b(data, digest_size=16).hexdigest(), lambda: data)

    def tree(self, source: Path, into: str = "") -> None:
        """Copy a whole folder into the site (the theme's output), keyed by content."""
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                rel = full.relative_to(source).as_posix()
                self.file(f"{into}{rel}", full.read_bytes())

    def claim(self, path: str, key: str) -> None:
        """Record a path written by another tool (the search indexer) under ``key``."""
        self.manifest[path] = key

    def _write(self, path: str, data: bytes) -> None:
        target = self.staging / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".wz-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    # -- finish -------------------------------------------------------------------

    def finish(self) -> None:
        """Remove pages no longer produced, write the manifest, swap the staging
        folder into place."""
        for path in sorted(set(self.old_manifest) - set(self.manifest)):
            target = self.staging / path
            if target.is_file():
                target.unlink()
        data = json.dumps(self.manifest, sort_keys=True, separators=(",", ":")).encode()
        self._write(MANIFEST, gzip_bytes(data))
        old = self.out.with_name(f".{self.out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if self.out.exists():
            os.rename(self.out, old)
        os.rename(self.staging, self.out)
        if old.exists():
            shutil.rmtree(old)

    def abandon(self) -> None:
        """Throw the staging folder away; the last good site stays as it was."""
        if self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
