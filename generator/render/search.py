"""Build the Pagefind search index, one shard per year of receipt.

Pagefind's indexer holds a whole index in memory and every query downloads the
index's metadata, which grows with the page count; a shard per year keeps both
bounded (about 190,000 petitions a year in a large city). The search page
searches the newest year first and offers the others.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pagefind_bin_extended

BINARY = Path(pagefind_bin_extended.__file__).parent / "pagefind_extended"


def index_year(site: Path, year: int) -> list[str]:
    """Index the Chinese petition pages of ``year`` into ``site/pagefind/<year>/``;
    return the paths written, relative to ``site``."""
    out = site / "pagefind" / str(year)
    if out.exists():
        shutil.rmtree(out)  # unlinks only: the last good site keeps its own copy
    proc = subprocess.run(
        [str(BINARY), "--site", str(site), "--glob", f"p/{year}-*/index.html",
         "--output-path", str(out), "--force-language", "zh", "--quiet"],
        capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"pagefind failed on {year}:\n{proc.stdout}\n{proc.stderr}")
    return sorted(p.relative_to(site).as_posix() for p in out.rglob("*") if p.is_file())
