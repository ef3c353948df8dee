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

Pagefind (1.5) writes each filter's values, and the list of filters in its
metadata file, in the order of a hash map whose seed is random in every run:
the same records gave other filter files, another metadata file and another
``pagefind-entry.json`` (which names it) on every build, so no published site
could be checked by rebuilding it. :func:`normalise` puts them in order after
Pagefind has run (values and filters by name) and names the files again as
Pagefind names them (a prefix of the SHA-1 of their content), so the index is
the same bytes for the same records; Pagefind's client reads it as before.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import marshal
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Collection

SIGNATURE = b"pagefind_dcd"  # what each of Pagefind's files starts with, once gunzipped


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
    return normalise(Path(job["into"]))


def normalise(into: Path) -> str | None:
    """Put the filter files and the metadata file Pagefind wrote into ``into``
    in a fixed order, under the names Pagefind gives such content, and point
    ``pagefind-entry.json`` at the new metadata file; return None, or what is
    not as Pagefind 1.5 writes it (then nothing has been changed)."""
    entry_path = into / "pagefind-entry.json"
    try:
        entry = json.loads(entry_path.read_text(encoding="utf-8"))
        renamed: dict[str, tuple[str, bytes]] = {}  # language -> its new metadata name, content
        filters_new: dict[Path, tuple[Path, bytes]] = {}  # old filter file -> new one, content
        for lang, about in sorted(entry["languages"].items()):
            meta_path = into / f"pagefind.{about['hash']}.pf_meta"
            meta = _read(meta_path)
            if not (isinstance(meta, list) and len(meta) >= 5 and isinstance(meta[3], list)
                    and isinstance(meta[4], list)):
                raise ValueError(f"{meta_path}: its fields are not those of Pagefind's metadata")
            taken: set[str] = set()
            for pair in sorted(meta[3]):  # [filter name, its file's hash]
                old = into / "filter" / f"{pair[1]}.pf_filter"
                index = _read(old)  # [filter name, [[value, [page numbers]], ...]]
                if not (isinstance(index, list) and len(index) == 2 and isinstance(index[1], list)):
                    raise ValueError(f"{old}: its fields are not those of a Pagefind filter")
                data = _cbor([index[0], sorted(index[1])])
                name = _name(lang, data, 7, taken)
                taken.add(name)
                filters_new[old] = (into / "filter" / f"{name}.pf_filter", data)
                pair[1] = name
            meta[3].sort()
            meta[4].sort(key=lambda sort: sort[0])  # [sort name, [page numbers]]
            data = _cbor(meta)
            renamed[lang] = (_name(lang, data, 10), data)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return (f"Pagefind's output in {into} is not as Pagefind 1.5 writes it, so it cannot be put in "
                f"order: {exc}; install the Pagefind of constraints.txt (pagefind_bin_extended)")
    for old in filters_new:  # all first: a new name may be an old one
        old.unlink()
    for new, data in filters_new.values():
        new.write_bytes(_gzip(data))
    for lang, (name, data) in renamed.items():
        (into / f"pagefind.{entry['languages'][lang]['hash']}.pf_meta").unlink()
        (into / f"pagefind.{name}.pf_meta").write_bytes(_gzip(data))
        entry["languages"][lang]["hash"] = name
    entry_path.write_text(json.dumps(entry, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return None


def _name(lang: str, data: bytes, digits: int, taken: Collection[str] = ()) -> str:
    """Return Pagefind's name for a file holding ``data``: the language and the
    first ``digits`` of the SHA-1's hex digits (written without leading zeros,
    as Pagefind writes them), more while the name is ``taken``."""
    full = "".join(format(b, "x") for b in hashlib.sha1(data).digest())
    while digits < len(full) and f"{lang}_{full[:digits]}" in taken:
        digits += 1
    return f"{lang}_{full[:digits]}"


def _read(path: Path) -> Any:
    """Return the value a file of Pagefind's holds (gzipped, signed CBOR);
    raise ValueError naming the file when it holds anything else."""
    try:
        data = gzip.decompress(path.read_bytes())
        if not data.startswith(SIGNATURE):
            raise ValueError("it does not start with Pagefind's signature")
        value, end = _uncbor(data, len(SIGNATURE))
        if end != len(data):
            raise ValueError("it has bytes after its value")
        if _cbor(value) != data[len(SIGNATURE):]:
            raise ValueError("its CBOR is not in the form this build writes back")
    except (OSError, EOFError, ValueError, IndexError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return value


def _gzip(data: bytes) -> bytes:
    """Return a file of Pagefind's holding ``data`` (CBOR): signed and gzipped
    (best compression, as Pagefind does; no time stamp)."""
    return gzip.compress(SIGNATURE + data, compresslevel=9, mtime=0)


# The CBOR Pagefind writes (minicbor, each structure an array): unsigned
# integers, byte and text strings and arrays, each length in its shortest form.

def _uncbor(data: bytes, i: int) -> tuple[Any, int]:
    """Return the CBOR value at ``data[i:]`` and where it ends."""
    major, info = data[i] >> 5, data[i] & 31
    i += 1
    if info < 24:
        n = info
    elif info <= 27:
        size = 1 << (info - 24)
        n, i = int.from_bytes(data[i:i + size], "big"), i + size
    else:
        raise ValueError(f"CBOR item of indefinite length at byte {i - 1}")
    if major == 0:
        return n, i
    if major == 2:
        return bytes(data[i:i + n]), i + n
    if major == 3:
        return data[i:i + n].decode("utf-8"), i + n
    if major == 4:
        items = []
        for _ in range(n):
            item, i = _uncbor(data, i)
            items.append(item)
        return items, i
    raise ValueError(f"CBOR major type {major} at byte {i - 1}")


def _cbor(value: Any) -> bytes:
    """Return ``value`` (made of what :func:`_uncbor` returns) as CBOR."""
    out = bytearray()
    _put(out, value)
    return bytes(out)


def _put(out: bytearray, value: Any) -> None:
    if isinstance(value, int):
        _head(out, 0, value)
    elif isinstance(value, bytes):
        _head(out, 2, len(value))
        out += value
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        _head(out, 3, len(raw))
        out += raw
    elif isinstance(value, list):
        _head(out, 4, len(value))
        for item in value:
            _put(out, item)
    else:
        raise TypeError(f"no CBOR for {type(value).__name__}")


def _head(out: bytearray, major: int, n: int) -> None:
    if n < 24:
        out.append(major << 5 | n)
        return
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            out.append(major << 5 | info)
            out += n.to_bytes(size, "big")
            return
    raise ValueError(f"{n} is too large for CBOR")


def main() -> int:
    with open(sys.argv[1], "rb") as fh:
        problem = run(marshal.load(fh))
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
