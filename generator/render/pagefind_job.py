"""Index one search shard, in a process of its own: write its records as
small pages, run Pagefind on them, delete them.

The build hands each shard here (:class:`generator.render.search.Indexer`)
rather than writing the records from a thread of its own process: a thread
that writes a file gives up Python's interpreter lock and waits up to 5 ms
to get it back while the build's own thread runs Python code, so 700
records took about 3 s to write and unpack, on the build process's critical
path, at 100,000 petitions. Here they take a few hundredths of a second, on
the other core.

Input: the path of a file holding, marshalled, ``{"site": folder for the records,
"into": Pagefind's output folder, "binary": Pagefind, "items": [(petition id,
folder, payload, month file, key)]}``, where each item's packed payload
(:class:`generator.render.products.Payload`) is either given or kept under
``key`` in the month file of the payload store. This module imports nothing
of the build's, so that it starts in a few hundredths of a second.
"""

from __future__ import annotations

import marshal
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any


def run(job: dict[str, Any]) -> str | None:
    """Index the shard ``job`` describes; return None, or what went wrong."""
    folder = Path(job["site"]) / "p"
    folder.mkdir(parents=True)
    months: dict[str, dict[str, bytes]] = {}
    for pid, where, payload, month_file, key in job["items"]:
        if not payload:
            entries = months.get(month_file)
            if entries is None:
                with open(month_file, "rb") as fh:
                    entries = months[month_file] = pickle.load(fh)
            payload = entries.get(key)
            if payload is None:
                return (f"{where}: its kept search record is missing from {month_file}; "
                        f"delete {Path(month_file).parent.parent} to rebuild the site's cache")
        with open(folder / f"{pid}.html", "w", encoding="utf-8") as fh:
            fh.write(pickle.loads(payload)[0])  # the Payload's search record
    months.clear()
    proc = subprocess.run([job["binary"], "--site", job["site"], "--output-path", job["into"],
                           "--force-language", "zh", "--quiet"], capture_output=True, text=True, check=False)
    if proc.returncode:
        return f"{proc.stdout}\n{proc.stderr}"
    return None


def main() -> int:
    with open(sys.argv[1], "rb") as fh:
        problem = run(marshal.load(fh))
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
