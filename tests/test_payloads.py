"""The settled cases' payload store (generator.render.products.PayloadStore):
one month in memory while a whole archive is read, months read back only when
asked for, stale payloads pruned."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest

from generator.render.products import Payload, PayloadStore


class Case:  # what the store reads of a case's products
    def __init__(self, folder: str, key: str, payload: bytes = b""):
        self.lite = {"folder": folder}
        self.payload_key = key
        self.payload = payload


def packed(n: int) -> bytes:
    return pickle.dumps((f"record {n}", b"{}", b"", "", ""), protocol=5)


def test_a_month_is_written_out_when_the_next_begins_and_read_back_on_demand(tmp_path):
    store = PayloadStore(tmp_path, "payloads-x")
    store.put("petitions/2026/01/2026-000001", "k1", packed(1))
    store.put("petitions/2026/01/2026-000002", "k2", packed(2))
    assert not (tmp_path / "payloads-x" / "2026-01.pickle").exists()
    store.put("petitions/2026/02/2026-000003", "k3", packed(3))
    # January is on disk and out of memory; February is still being added to.
    assert (tmp_path / "payloads-x" / "2026-01.pickle").is_file()
    assert list(store._months) == ["2026-02"]
    inline = Case("petitions/2026/02/2026-000004", "k4", packed(4))  # an open case keeps its own
    got = store.unpacked([Case("petitions/2026/02/2026-000003", "k3"), inline,
                          Case("petitions/2026/01/2026-000001", "k1")])
    assert [p.search for p in got] == ["record 3", "record 4", "record 1"] and isinstance(got[0], Payload)

    (tmp_path / "payloads-old").mkdir()  # another code version's payloads
    store.save({"2026-01": {"k1"}, "2026-02": {"k3"}})
    assert not (tmp_path / "payloads-old").exists()
    again = PayloadStore(tmp_path, "payloads-x")
    assert [p.search for p in again.unpacked([Case("petitions/2026/02/2026-000003", "k3")])] == ["record 3"]
    # A warm build adds to a month already on disk, keeping what is still settled.
    again.put("petitions/2026/01/2026-000005", "k5", packed(5))
    again.save({"2026-01": {"k5"}, "2026-02": {"k3"}})
    assert set(pickle.loads((tmp_path / "payloads-x" / "2026-01.pickle").read_bytes())) == {"k5"}
    again.save({"2026-02": {"k3"}})  # no settled case left in January
    assert not (tmp_path / "payloads-x" / "2026-01.pickle").exists()
    with pytest.raises(RuntimeError, match="petitions/2026/01/2026-000005: .* missing .* delete"):
        again.unpacked([Case("petitions/2026/01/2026-000005", "k5")])


def record(title: str, text: str) -> bytes:
    """A payload whose search record is a small page (products.Payload's first field)."""
    html = f'<html lang="zh"><body data-pagefind-body><h1>{title}</h1><p>{text}</p></body></html>'
    return pickle.dumps((html, b"{}", b"", "", ""), protocol=5)


def test_a_search_shard_is_indexed_in_a_process_of_its_own(tmp_path):
    """The indexer hands a shard to a process of its own (generator.render.
    pagefind_job) with each case's payload, or where the payload store keeps
    it; that process writes the records, runs Pagefind and reports a missing
    payload by the case's folder, with what to delete."""
    from generator.render import search

    store = PayloadStore(tmp_path / "cache", "payloads-x")
    store.put("petitions/2026/01/2026-000001", "k1", record("路灯不亮", "学府路的路灯坏了三天"))
    store.put("petitions/2026/02/2026-000002", "k2", record("噪音扰民", "夜间施工噪音"))  # January to disk
    members = [Case("petitions/2026/01/2026-000001", "k1"),  # kept on disk
               Case("petitions/2026/02/2026-000002", "k2"),  # in the month being added to
               Case("petitions/2026/02/2026-000003", "k3", record("井盖缺失", "人行道井盖丢失"))]  # open: its own
    for i, p in enumerate(members, 1):
        p.id = f"2026-00000{i}"
    items = search.job_items(members, store)
    assert [(pid, bool(payload), Path(month).name, key) for pid, _, payload, month, key in items] == [
        ("2026-000001", False, "2026-01.pickle", "k1"), ("2026-000002", True, "", ""), ("2026-000003", True, "", "")]

    indexer = search.Indexer(scratch=tmp_path)
    try:
        indexer.add("2026-01", lambda: items, tmp_path / "out" / "2026-01")
        files = indexer.results()["2026-01"]
    finally:
        indexer.close()
    assert "pagefind.js" in files and any(f.startswith("fragment/") for f in files)
    fragments = b"".join(gzip.decompress((tmp_path / "out" / "2026-01" / f).read_bytes())
                         for f in files if f.startswith("fragment/"))
    for title in ("路灯不亮", "噪音扰民", "井盖缺失"):  # every record was indexed, wherever it was kept
        assert title.encode() in fragments

    lost = Case("petitions/2026/01/2026-000009", "gone")
    lost.id = "2026-000009"
    indexer = search.Indexer(scratch=tmp_path)
    try:
        indexer.add("2026-01", lambda: search.job_items([lost], store), tmp_path / "out" / "lost")
        with pytest.raises(RuntimeError, match=r"shard 2026-01:\n.*petitions/2026/01/2026-000009: its kept search "
                                               r"record is missing from .*2026-01.pickle; delete .*cache to rebuild"):
            indexer.results()
    finally:
        indexer.close()
