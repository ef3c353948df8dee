"""The pull-request gate runs trusted code: a pull request is only data.

Each forge's check job is run as the forge runs it (tests/forge_runner.py):
its own steps, in order, in fresh clones of a real forge repository, with a
non-editable install into a fresh Python. The attacking pull request is a
department's: it makes ``check_pull_request`` refuse nothing and, in the same
change, edits a reply that is already merged. A gate that installs the
checker from the pull request passes it.
"""

from __future__ import annotations

import re

import pytest

from tests import forge_runner as fr
from tests.records_util import FOLDER, stamp
from tests.test_governance import merged_case

pytestmark = pytest.mark.slow

MAINTAINER = "mh-maintainer"
REPLY = f"{FOLDER}/{stamp('2026-11-18T15:00:00+08:00')}-reply.yaml"
FORGES = {
    "github": lambda pr, tmp: fr.run_actions_job(".github/workflows/check.yml", pr, tmp),
    "gitea": lambda pr, tmp: fr.run_actions_job(".gitea/workflows/check.yml", pr, tmp),
    "gitlab": lambda pr, tmp: fr.run_gitlab_job(pr, tmp),
}
NEUTERED = (
    "\n\ndef check_pull_request(change, departments, tolerance, author, now):\n"
    "    return []  # nothing is refused any more\n"
)


@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    """The archive's forge repository: the project as shipped, the demo
    city's departments (with one maintainer) and a merged case."""
    tmp = tmp_path_factory.mktemp("forge")
    files: dict[str, bytes | str] = {**fr.project_files(), **merged_case()}
    departments = files["departments.yaml"]
    text = departments.decode("utf-8") if isinstance(departments, bytes) else departments
    files["departments.yaml"] = text + f"\nmaintainers: [{MAINTAINER}]\n"
    remote, work = fr.forge_repository(tmp, files)
    fr.wheelhouse()  # built once, before any job is timed
    return remote, work, iter(range(1, 100))


def refused(output: str, path: str, code: str) -> bool:
    """True when the check's output refuses ``path`` under the rule ``code``,
    with what to do instead on the next line."""
    return re.search(rf"^{re.escape(path)}(:\d+)?: error: .+ \[{re.escape(code)}\]\n    fix: \S",
                     output, re.M) is not None


def _open(forge, author: str, files: dict[str, str | bytes | None]) -> fr.PullRequest:
    remote, work, numbers = forge
    return fr.open_pull_request(remote, work, next(numbers), author, files)


def _merged_reply(forge) -> str:
    remote, _, _ = forge
    return fr.git(remote, "show", f"main:{REPLY}")


@pytest.mark.parametrize("name", list(FORGES))
def test_a_pull_request_that_disarms_the_checker_is_refused_by_every_forge(forge, name, tmp_path):
    remote = forge[0]
    checker = fr.git(remote, "show", "main:generator/governance.py")
    pr = _open(forge, "mh-housing", {
        "generator/governance.py": checker + NEUTERED,
        REPLY: _merged_reply(forge).replace("已修复。", "已修复，居民非常满意。"),
    })
    run = FORGES[name](pr, tmp_path)
    assert not run.ok, f"the {name} gate passed a pull request that disarmed its checker:\n{run.output}"
    # refused by the checker, with the file, the rule and the way out
    assert refused(run.output, REPLY, "append-only"), run.output
    assert "add a `correction` event" in run.output
    assert refused(run.output, "generator/governance.py", "maintainers-only"), run.output


@pytest.mark.parametrize("name", list(FORGES))
def test_a_maintainer_changes_the_code_through_every_forge(forge, name, tmp_path):
    remote = forge[0]
    checker = fr.git(remote, "show", "main:generator/governance.py")
    workflow = fr.git(remote, "show", "main:.github/workflows/check.yml")
    pr = _open(forge, MAINTAINER, {
        "generator/governance.py": checker + "\n# reviewed by the maintainers\n",
        ".github/workflows/check.yml": workflow + "# reviewed\n",
    })
    run = FORGES[name](pr, tmp_path)
    assert run.ok, run.output
    assert "no problems" in run.output, run.output


@pytest.mark.parametrize("name", ["github", "gitea"])
def test_a_pull_request_cannot_rewrite_the_workflow_that_judges_it(forge, name, tmp_path):
    """A pull request that replaces its check job by `true` is still judged
    by the base branch's job (pull_request_target), which refuses it."""
    path = {"github": ".github/workflows/check.yml", "gitea": ".gitea/workflows/check.yml"}[name]
    harmless = ("name: Check pull request\non:\n  pull_request:\n    branches: [main]\n"
                "  pull_request_target:\n    branches: [main]\n"
                "jobs:\n  check:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n")
    pr = _open(forge, "mh-housing", {
        path: harmless,
        REPLY: _merged_reply(forge).replace("已修复。", "已修复，居民非常满意。"),
    })
    run = FORGES[name](pr, tmp_path)
    assert not run.ok, f"the {name} gate ran the pull request's own workflow:\n{run.output}"
    assert refused(run.output, path, "maintainers-only"), run.output
    assert refused(run.output, REPLY, "append-only"), run.output
