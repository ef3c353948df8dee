"""Attack: personal data typed the way people type it must never reach git.

Each example of issue #19 is submitted through the real bridge (a uvicorn
process, the local provider, real git), through ``wenzheng import`` and
through the department reply tool; then every object of each repository
(``git cat-file --batch-all-objects --batch``), every ref name, every commit
message and every reflog is searched for the number or address, both as typed
and normalised (width folded, separators between digits removed). The scan is
written here, apart from the masking code, so that it cannot share its blind
spots.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from generator.bridge.privacy import new_key_pair
from generator.cli import main
from tests.bridge.kit import BridgeServer, assert_archive_valid, free_port, seed_archive, solve, wait_for, write_config
from tests.import_util import make_target, tree_files

ROOT = Path(__file__).resolve().parents[2]

# (as typed, the digits or address that must not survive in any form)
EXAMPLES = [
    ("158－1234－5678", ("15812345678",)),
    ("1591 234 5678", ("15912345678",)),
    ("188.1234.5678", ("18812345678",)),
    ("057765889999", ("057765889999", "65889999")),
    ("0577 6588 7777", ("057765887777", "65887777")),
    ("330302 19900307 1231", ("330302199003071231",)),  # spaced 18-digit ID, check digit right
    ("330302850614127", ("330302850614127",)),  # a 15-digit (first-generation) ID
    ("110105198512120417", ("110105198512120417",)),  # 18 digits, check digit mistyped
    ("ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", ("zhang@example.com", "zhang")),
    ("zhao@example。com", ("zhao@example.com", "zhao")),
    # the red-team pass (issue #23)
    ("壹叁捌壹贰叁肆伍陆柒捌", ("13812345678",)),
    ("一三八 一二三四 五六七八", ("13812345678",)),
    ("1 3 8 1 2 3 4 5 6 7 8", ("13812345678",)),
    ("139，1234，5678", ("13912345678",)),
    ("137、1234、5678", ("13712345678",)),
    ("136~1234~5678", ("13612345678",)),
    ("135｜1234｜5678", ("13512345678",)),
    ("134    1234    5678", ("13412345678",)),
    ("133；1234；5678", ("13312345678",)),
    ("05278456 1234", ("052784561234", "84561234")),
    ("lisi at qq dot com", ("lisi",)),
    ("wangwu [at] qq [dot] com", ("wangwu",)),
    ("欧阳震华@qq.com", ("欧阳震华",)),
    ("zhao liu @ example . com", ("zhao liu", "liu @")),
    ("321302 1980 0101 123 X", ("32130219800101123",)),
    ("6222 0212 3456 7890 123", ("6222021234567890123",)),
]

_SEPARATORS = " \t\u00a0-‐‑‒–—―−.·・_/(),、~*+|;:"
# Chinese digits, also the financial ones, read as digits wherever they are.
_CHINESE = str.maketrans("〇零一幺二三四五六七八九壹贰貳叁參肆伍陆陸柒捌玖", "001123456789122334566789")


def normalised(text: str) -> str:
    """The text as a reader would take it: NFKC, ideographic full stop as a dot,
    Chinese digits as digits, no separators between digits, lower case."""
    text = unicodedata.normalize("NFKC", text).replace("。", ".").replace("｡", ".").lower()
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").translate(_CHINESE)
    return re.sub(r"(?<=\d)(?:[" + re.escape(_SEPARATORS) + r"]{1,3}| {4,8})(?=\d)", "", text)


def leaks(text: str, needles: list[str]) -> list[str]:
    forms = (text, text.lower(), normalised(text))
    return [n for n in needles if any(n in f for f in forms)]


def repository_texts(repo: Path) -> dict[str, str]:
    """Every object, ref name, commit message and reflog of a repository, as text."""
    git_dir = Path(subprocess.run(["git", "-C", str(repo), "rev-parse", "--absolute-git-dir"], check=True,
                                  capture_output=True, text=True).stdout.strip())
    out: dict[str, str] = {}
    objects = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
                             check=True, capture_output=True).stdout
    assert objects, f"no objects in {repo}"
    out[f"{repo}: objects"] = objects.decode("utf-8", errors="replace")
    refs = subprocess.run(["git", "-C", str(repo), "for-each-ref", "--format=%(refname)"], check=True,
                          capture_output=True, text=True).stdout
    out[f"{repo}: refs"] = refs
    out[f"{repo}: messages"] = subprocess.run(["git", "-C", str(repo), "log", "--all", "--format=%B"],
                                              check=True, capture_output=True, text=True).stdout
    for log in (git_dir / "logs").rglob("*") if (git_dir / "logs").is_dir() else ():
        if log.is_file():
            out[f"{repo}: reflog {log.relative_to(git_dir)}"] = log.read_text(encoding="utf-8", errors="replace")
            out[f"{repo}: reflog name {log.relative_to(git_dir)}"] = str(log.relative_to(git_dir))
    return out


def assert_nothing_leaked(repos: list[Path], examples=EXAMPLES) -> None:
    needles = sorted({n for _, ns in examples for n in ns})
    found = {where: hit for r in repos for where, text in repository_texts(r).items()
             if (hit := leaks(text, needles))}
    assert not found, f"personal data reached git: {found}"


def test_the_scan_finds_each_example_as_typed():
    """The scan itself must see every example, or a pass would prove nothing."""
    for typed, needles in EXAMPLES:
        assert leaks(f"请联系 {typed} 谢谢", list(needles)), typed


def test_the_bridge_keeps_every_example_out_of_git(tmp_path):
    _, recipient = new_key_pair()
    year = datetime.now(timezone(timedelta(hours=8))).year
    remote, centre = seed_archive(tmp_path, year, seq=41)
    clone = tmp_path / "bridge-clone"
    port = free_port()
    cfg = write_config(tmp_path, recipient, **{
        "forge.local.remote": str(remote), "forge.local.repo": str(clone),
        "public_url": f"http://127.0.0.1:{port}", "forge.batch.max_items": 4, "abuse.burst": 1000})
    server = BridgeServer(cfg, port, tmp_path / "bridge.log").start()
    receipts = []
    try:
        with httpx.Client(timeout=20) as client:
            for typed, _ in EXAMPLES:
                token = client.get(server.url + "/api/form").json()["form_token"]
                form = {"category": "complaint", "title": f"路灯坏了 联系{typed}",
                        "body": f"小区门口路灯坏了三周。我的联系方式：{typed}，请回电。\n谢谢。",
                        "district": f"东湖区 {typed}"[:40], "contact": f"王五 {typed}", "consent": "yes",
                        "form_token": token, "pow": solve(token)}
                resp = client.post(server.url + "/api/petitions", json=form)
                assert resp.status_code == 201, resp.text
                receipts.append(resp.json()["receipt_token"])
            # Kept for the moderator to judge: a house number and a QQ id; the flags, not the data, go to git.
            token = client.get(server.url + "/api/form").json()["form_token"]
            resp = client.post(server.url + "/api/petitions", json={
                "category": "complaint", "title": "楼道灯不亮", "consent": "yes",
                "body": "我家在湖滨路128号3栋2单元501室，楼道灯坏了。加我QQ 987654321 详谈。",
                "form_token": token, "pow": solve(token)})
            assert resp.status_code == 201, resp.text
            flagged = resp.json()["petition_id"]
            receipts.append(resp.json()["receipt_token"])
            # Markers are longer than what they replace: a full title of short ids must still fit.
            token = client.get(server.url + "/api/form").json()["form_token"]
            resp = client.post(server.url + "/api/petitions", json={
                "category": "complaint", "title": ("QQ 86420 " * 12)[:100], "consent": "yes",
                "body": ("QQ 86420 " * 600)[:5000], "district": ("QQ 86420 " * 5)[:40],
                "form_token": token, "pow": solve(token)})
            assert resp.status_code == 201, resp.text
            receipts.append(resp.json()["receipt_token"])
            for token in receipts:
                wait_for(lambda: client.get(f"{server.url}/api/receipts/{token}").json()["status"] == "opened",
                         timeout=60)
    finally:
        server.stop()
    branches = subprocess.run(["git", "-C", str(remote), "for-each-ref", "--format=%(refname)",
                               "refs/heads/bridge/"], check=True, capture_output=True, text=True).stdout.split()
    assert branches, "the worker opened no branch"
    for branch in branches:  # every record the bridge wrote passes the checks CI runs
        assert_archive_valid(remote, branch)
    assert_nothing_leaked([remote, clone], EXAMPLES + [("QQ 987654321", ("987654321",)), ("QQ 86420", ("86420",))])
    messages = subprocess.run(["git", "-C", str(remote), "log", "--all", "--format=%B"], check=True,
                              capture_output=True, text=True).stdout
    [note] = [line for line in messages.splitlines() if f"`{flagged}`" in line]
    assert "needs moderation" in note and "address" in note and "im_id" in note, note


IMPORT_MAPPING = """\
system: oldhotline
timezone: Asia/Shanghai
columns:
  id: 工单编号
  received_at: 受理时间
  category: 诉求类型
  channel: 来源
  department: 承办单位
  title: 标题
  text: [内容]
  reply_text: 答复内容
  closed_at: 办结时间
  status: 状态
  district: 区县
  address: 地址
time_formats:
  default: ["%Y-%m-%d %H:%M:%S"]
values:
  category: {投诉: complaint}
  channel: {电话: phone}
  status: {已办结: closed, 办理中: open}
  department: {住建局: housing}
resolution:
  default: resolved
"""


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def test_the_importer_keeps_every_example_out_of_git(tmp_path):
    target = make_target(tmp_path / "archive", (ROOT / "departments.yaml").read_text(encoding="utf-8"),
                         (ROOT / "rules.yaml").read_text(encoding="utf-8"))
    rows = ["工单编号,受理时间,诉求类型,来源,承办单位,标题,内容,答复内容,办结时间,状态,区县,地址"]
    for i, (typed, _) in enumerate(EXAMPLES):
        rows.append(",".join(_csv_cell(c) for c in (
            f"M{i}", "2025-11-03 09:00:00", "投诉", "电话", "住建局", f"路灯坏了 {typed}",
            f"市民来电称路灯坏了，联系方式 {typed}。", f"已修复。如有疑问请联系{typed}。",
            "2025-11-06 16:00:00", "已办结", f"东湖区{typed}", f"东湖区湖滨路 {typed}")))
    source = tmp_path / "src.csv"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(IMPORT_MAPPING, encoding="utf-8")
    result = CliRunner().invoke(main, ["import", str(source), "--mapping", str(mapping), "--repo", str(target),
                                       "--now", "2026-03-01T12:00:00+08:00", "--format", "json"])
    assert result.exit_code == 0, result.output
    imported = subprocess.run(["git", "-C", str(target), "ls-tree", "-r", "--name-only", "main"],
                              check=True, capture_output=True, text=True).stdout
    assert imported.count("petition.yaml") == len(EXAMPLES), result.output
    assert_nothing_leaked([target])


@pytest.fixture
def dept_archive(make_repo) -> Path:
    from tests.test_governance import merged_case
    repo = make_repo(merged_case())
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "Desk"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "desk@example.org"], check=True)
    return repo


def test_the_department_reply_tool_keeps_every_example_out_of_git(dept_archive):
    for i, (typed, _) in enumerate(EXAMPLES):
        now = f"2026-11-20T10:{i:02d}:00+08:00"
        result = CliRunner().invoke(main, ["reply", "2026-000001", "-m", f"已联系市民（{typed}），正在处理。",
                                           "--commit", "--repo", str(dept_archive), "--now", now,
                                           "--account", "mh-housing"])
        assert result.exit_code == 0, result.output
    assert_nothing_leaked([dept_archive])


OFFICE_PHONE = "0527-8456 1234"


def departments_with_phones() -> str:
    """The shipped departments.yaml with a public number for housing."""
    text = (ROOT / "departments.yaml").read_text(encoding="utf-8")
    marker = "    members: [mh-housing]\n"
    assert marker in text
    return text.replace(marker, marker + f"    phones: ['{OFFICE_PHONE}', '12345']\n")


def test_an_office_number_stays_visible_in_its_own_reply_only(make_repo):
    from tests.test_governance import merged_case
    repo = make_repo({**merged_case(), "departments.yaml": departments_with_phones()})
    text = f"如有疑问请致电本局 {OFFICE_PHONE}；市民电话 13912345678 已回访。"
    for i, (case, account) in enumerate((("2026-000001", "mh-housing"), ("2026-000002", "mh-transport"))):
        result = CliRunner().invoke(main, ["reply", case, "-m", text, "--repo", str(repo), "--account", account,
                                           "--now", f"2026-11-20T11:0{i}:00+08:00"])
        assert result.exit_code == 0, result.output
        assert "personal-data-masked" in result.output
    housing = (repo / "petitions/2026/11/2026-000001/20261120T030000Z-reply.yaml").read_text(encoding="utf-8")
    assert OFFICE_PHONE in housing and "13912345678" not in housing and "[手机号已隐去]" in housing
    # transport's reply quoting housing's number: not transport's own, so masked
    transport = (repo / "petitions/2026/11/2026-000002/20261120T030100Z-reply.yaml").read_text(encoding="utf-8")
    assert "8456" not in transport and "[电话号码已隐去]" in transport


def test_the_importer_keeps_office_numbers_in_replies_not_in_petitions(tmp_path):
    target = make_target(tmp_path / "archive", departments_with_phones(),
                         (ROOT / "rules.yaml").read_text(encoding="utf-8"))
    rows = ["工单编号,受理时间,诉求类型,来源,承办单位,标题,内容,答复内容,办结时间,状态,区县,地址",
            ",".join(_csv_cell(c) for c in (
                "P1", "2025-11-03 09:00:00", "投诉", "电话", "住建局", "路灯坏了", f"我打了 {OFFICE_PHONE} 没人接。",
                f"已修复。咨询电话 {OFFICE_PHONE}。", "2025-11-06 16:00:00", "已办结", "东湖区", ""))]
    source = tmp_path / "src.csv"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(IMPORT_MAPPING, encoding="utf-8")
    result = CliRunner().invoke(main, ["import", str(source), "--mapping", str(mapping), "--repo", str(target),
                                       "--now", "2026-03-01T12:00:00+08:00", "--format", "json"])
    assert result.exit_code == 0, result.output
    files = tree_files(target)
    [petition] = [t for n, t in files.items() if n.endswith("petition.yaml")]
    [reply] = [t for n, t in files.items() if n.endswith("-reply.yaml")]
    assert OFFICE_PHONE not in petition and "[电话号码已隐去]" in petition
    assert OFFICE_PHONE in reply


def test_bad_office_phones_are_reported_where_they_are(make_repo):
    text = departments_with_phones().replace(f"['{OFFICE_PHONE}', '12345']", "[0527, '电话']")
    repo = make_repo({"departments.yaml": text})
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--no-cache"])
    assert result.exit_code != 0
    line = text.splitlines().index("    phones: [0527, '电话']") + 1
    assert f"departments.yaml:{line}: error:" in result.output and "[bad-phones]" in result.output, result.output
    assert "departments.0.phones" in result.output and "0527-84561234" in result.output
