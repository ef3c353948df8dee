"""The settled cases' payload store (generator.render.products.PayloadStore):
one month in memory while a whole archive is read, months read back only when
asked for, stale payloads pruned."""

from __future__ import annotations

import pickle

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
