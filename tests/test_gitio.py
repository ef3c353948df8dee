"""Git plumbing against real repositories: the archive writer and readers."""

from __future__ import annotations

import subprocess

from generator import gitio


def _files(repo, rev="HEAD"):
    return {e.path: e.oid for e in gitio.ls_tree(repo, rev)}


def test_archive_writer_builds_on_history_adds_replaces_and_deletes(tmp_path):
    repo = gitio.init_repo(tmp_path / "r")
    with gitio.ArchiveWriter(repo) as w:
        first = w.commit([("a.txt", b"one\n"), ("d/x/1.yaml", b"1\n"), ("d/x/2.yaml", b"2\n"),
                          ("d/y/1.yaml", b"y\n")], "first", when=1_700_000_000)
        second = w.commit([("d/x/3.yaml", b"3\n"), ("a.txt", b"two\n")], "second",
                          when=1_700_000_100, deletes=["d/y/1.yaml"])
    assert gitio.rev_parse(repo, "main") == second
    assert set(_files(repo, first)) == {"a.txt", "d/x/1.yaml", "d/x/2.yaml", "d/y/1.yaml"}
    assert set(_files(repo)) == {"a.txt", "d/x/1.yaml", "d/x/2.yaml", "d/x/3.yaml"}
    assert gitio.read_file_at(repo, "HEAD", "a.txt") == b"two\n"
    # A later writer starts from the branch's head and reopens sealed folders from git.
    with gitio.ArchiveWriter(repo) as w:
        w.commit([("d/x/4.yaml", b"4\n")], "third", when=1_700_000_200)
    assert set(_files(repo)) == {"a.txt", "d/x/1.yaml", "d/x/2.yaml", "d/x/3.yaml", "d/x/4.yaml"}
    log = gitio.git(repo, "log", "--format=%s %at").decode().split("\n")
    assert log[:3] == ["third 1700000200", "second 1700000100", "first 1700000000"]
    fsck = subprocess.run(["git", "-C", str(repo), "fsck", "--strict"], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_archive_writer_matches_what_git_add_would_commit(tmp_path):
    files = {f"petitions/2026/11/2026-{i:06d}/petition.yaml": f"id: {i}\n".encode()
             for i in range(300)}
    files["README.md"] = b"hello\n"
    written = gitio.init_repo(tmp_path / "w")
    with gitio.ArchiveWriter(written) as w:
        w.commit(sorted(files.items()), "all", when=1_700_000_000)
    plain = gitio.init_repo(tmp_path / "p")
    for path, content in files.items():
        (plain / path).parent.mkdir(parents=True, exist_ok=True)
        (plain / path).write_bytes(content)
    gitio.git(plain, "add", "-A")
    gitio.git(plain, "commit", "-qm", "all")
    tree = lambda repo: gitio.git(repo, "rev-parse", "HEAD^{tree}").strip()  # noqa: E731
    assert tree(written) == tree(plain)


def test_a_failed_writer_leaves_the_branch_alone(tmp_path):
    repo = gitio.init_repo(tmp_path / "r")
    with gitio.ArchiveWriter(repo) as w:
        w.commit([("a", b"1")], "ok", when=1_700_000_000)
    before = gitio.rev_parse(repo, "main")
    try:
        with gitio.ArchiveWriter(repo) as w:
            w.commit([("b", b"2")], "half", when=1_700_000_100)
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert gitio.rev_parse(repo, "main") == before
    assert not list((repo / ".git/objects/pack").glob("tmp_*"))


def test_diff_tree_sees_renames(tmp_path):
    repo = gitio.init_repo(tmp_path / "r")
    with gitio.ArchiveWriter(repo) as w:
        a = w.commit([("x/a.yaml", b"same content here\n" * 5)], "a", when=1_700_000_000)
        b = w.commit([("x/b.yaml", b"same content here\n" * 5)], "b", when=1_700_000_100,
                     deletes=["x/a.yaml"])
    assert gitio.diff_tree(repo, a, b) == [gitio.Change("R", "x/b.yaml", "x/a.yaml")]
