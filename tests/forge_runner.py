"""Run a forge's pull-request check job on this machine, as the forge runs it.

The forge's repository is a bare repository; a pull request is its head
pushed there as ``refs/pull/<n>/head`` (GitHub, Gitea) and
``refs/merge-requests/<n>/head`` (GitLab), with the test merge GitHub makes
as ``refs/pull/<n>/merge``.

The job is read from the workflow file the forge reads (GitHub and Gitea: the
base branch's for ``pull_request_target``, the test merge's for
``pull_request``; GitLab: the default branch's, as docs/governance.md says to
configure it) and its steps run in order, unchanged:

* ``actions/checkout``: a clone of the bare repository at the ref the action
  checks out (``with: ref``, ``path``, ``fetch-depth``; 0 is the whole history);
* ``actions/setup-python`` (and GitLab's ``image: python``): a fresh venv put
  first on PATH, so ``pip install`` installs into it, non-editable;
* each ``run:`` (GitLab: ``before_script`` then ``script``): bash, with the
  variables the forge sets (``GITHUB_*``, ``CI_*``, the ``${{ }}`` expressions
  of the event).

Anything else in a job (another action, an expression this runner does not
know) fails the run, so a workflow cannot pass here by using what is not
emulated. pip asks no index: the pinned dependencies come from a wheelhouse
built once (``wheelhouse``), which stands for the runner's pip cache; the
package itself is built by the job's own ``pip install``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REPOSITORY = "minghu/wenzheng"


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def wheelhouse() -> Path:
    """Return a folder of wheels of every pinned dependency (constraints.txt),
    built once per set of pins and kept in the user's cache."""
    pins = hashlib.sha1((ROOT / "constraints.txt").read_bytes()
                        + (ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    house = cache / "wenzheng-tests" / f"wheels-{pins}"
    if (house / ".complete").exists():
        return house
    tmp = house.with_name(f"{house.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "-c", str(ROOT / "constraints.txt"),
                    "-w", str(tmp), str(ROOT), "setuptools>=77"], check=True, capture_output=True)
    for own in tmp.glob("wenzheng-*.whl"):
        own.unlink()  # the job builds the package itself
    (tmp / ".complete").touch()
    try:
        tmp.rename(house)
    except OSError:  # another worker finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return house


# -- the forge's repository ------------------------------------------------------


@dataclass(frozen=True)
class PullRequest:
    remote: Path  # the forge's (bare) repository
    number: int
    author: str
    base_sha: str  # the base branch's head when the pull request was opened
    head_sha: str
    merge_sha: str  # GitHub's test merge of head into base


def project_files() -> dict[str, bytes]:
    """Return the project as shipped (code, workflows, configuration, and the
    files the wheel carries for the site: generator.shipped.FILES), without the
    demo archive, the tests and the other documents, as the work tree has it."""
    from generator.shipped import FILES

    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    keep = {}
    for path in listed:
        shipped = any(path == name or path.startswith(name + "/") for name in FILES)
        if not path or (path.startswith(("petitions/", "tests/", "docs/", "bench/")) and not shipped):
            continue
        if (ROOT / path).is_file():
            keep[path] = (ROOT / path).read_bytes()
    return keep


def write_files(work: Path, files: dict[str, bytes | str | None]) -> None:
    for path, content in files.items():
        target = work / path
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def commit(work: Path, message: str, author: str) -> str:
    git(work, "add", "-A")
    git(work, "-c", f"user.name={author}", "-c", f"user.email={author}@users.noreply.example",
        "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD").strip()


def forge_repository(tmp: Path, files: dict[str, bytes | str]) -> tuple[Path, Path]:
    """Return (the forge's bare repository, a working clone) holding ``files`` on main."""
    work = tmp / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    write_files(work, files)
    commit(work, "founding commit", "mh-maintainer")
    remote = tmp / "forge.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(remote)], check=True)
    # GitHub, Gitea and GitLab serve any commit of the repository by its id
    git(remote, "config", "uploadpack.allowAnySHA1InWant", "true")
    git(work, "remote", "add", "forge", str(remote))
    return remote, work


def open_pull_request(remote: Path, work: Path, number: int, author: str,
                      files: dict[str, bytes | str | None], modes: dict[str, str] | None = None,
                      message: str = "change") -> PullRequest:
    """Commit ``files`` on a branch off main, by ``author``, and open it as a
    pull request on the forge (the refs the forges make)."""
    git(work, "checkout", "-q", "-B", f"pr{number}", "forge/main" if _has(work, "forge/main") else "main")
    write_files(work, files)
    git(work, "add", "-A")
    for path, mode in (modes or {}).items():
        git(work, "update-index", f"--chmod={'+x' if mode == '100755' else '-x'}", path)
    head = commit(work, message, author)
    base = git(remote, "rev-parse", "main").strip()
    git(work, "checkout", "-q", "--detach", base)
    git(work, "-c", "user.name=forge", "-c", "user.email=forge@localhost", "merge", "-q", "--no-ff",
        "-m", f"Merge {head} into {base}", head)
    merge = git(work, "rev-parse", "HEAD").strip()
    git(work, "checkout", "-q", "main")
    git(work, "push", "-q", "forge", f"{head}:refs/pull/{number}/head", f"{merge}:refs/pull/{number}/merge",
        f"{head}:refs/merge-requests/{number}/head")
    return PullRequest(remote, number, author, base, head, merge)


def _has(repo: Path, ref: str) -> bool:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", ref],
                          capture_output=True).returncode == 0


# -- running a job ---------------------------------------------------------------


@dataclass
class JobRun:
    ok: bool
    steps: list[tuple[str, int]] = field(default_factory=list)  # (step, exit code)
    output: str = ""


class Unemulated(AssertionError):
    """The job uses something this runner does not run as the forge would."""


def _runner_env(tmp: Path) -> dict[str, str]:
    """A runner machine's environment: the system's PATH (no venv of this test
    run), HOME for git, pip asking the wheelhouse only."""
    assert shutil.which("wenzheng", path=SYSTEM_PATH) is None, "a wenzheng on the system PATH"
    env = {"PATH": SYSTEM_PATH, "HOME": str(Path.home()), "LANG": "C.UTF-8",
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse()),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TMPDIR": str(tmp)}
    for name in ("PIP_CERT",):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _python_on_path(tmp: Path, env: dict[str, str], version: str) -> None:
    """setup-python / the python image: a fresh Python of ``version`` first on PATH."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version != here:
        raise Unemulated(f"the job asks for Python {version}; this machine runs {here}")
    tool = tmp / "hostedtoolcache" / "python"
    if not tool.exists():
        subprocess.run([sys.executable, "-m", "venv", str(tool)], check=True)
    env["PATH"] = f"{tool / 'bin'}{os.pathsep}{env['PATH']}"


def _clone(remote: Path, dest: Path, ref: str, depth: int) -> None:
    """actions/checkout and the GitLab runner: fetch ``ref`` (a ref or commit
    id), with ``depth`` commits of history (0: all), and check it out."""
    shallow = [] if depth == 0 else [f"--depth={depth}"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--no-checkout", *shallow, f"file://{remote}", str(dest)],
                   check=True, capture_output=True)
    git(dest, "fetch", "-q", *shallow, "origin", ref)
    git(dest, "checkout", "-q", "--detach", "FETCH_HEAD")


def _bash(script: str, cwd: Path, env: dict[str, str], tmp: Path) -> tuple[int, str]:
    """Run a step's script as both runners do: bash, stopping at the first failure."""
    steps = tmp / "steps"
    steps.mkdir(exist_ok=True)
    path = steps / f"{hashlib.sha1(script.encode()).hexdigest()[:12]}.sh"
    path.write_text(script, encoding="utf-8")
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", str(path)],
                          cwd=cwd, env=env, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def _triggers(doc: dict) -> dict:
    value = doc.get("on", doc.get(True))  # YAML 1.1 reads the bare key `on` as true
    return value if isinstance(value, dict) else {k: None for k in value}


def run_actions_job(workflow: str, pr: PullRequest, tmp: Path, job: str = "check") -> JobRun:
    """Run ``job`` of the GitHub/Gitea workflow at ``workflow`` (a path in the
    repository) for the pull request ``pr``, as the forge runs it."""
    base_doc = yaml.safe_load(git(pr.remote, "show", f"{pr.base_sha}:{workflow}"))
    if "pull_request_target" in _triggers(base_doc):
        event, doc, sha, ref = "pull_request_target", base_doc, pr.base_sha, "refs/heads/main"
    else:
        # pull_request: the workflow file and the checkout are the test merge's
        doc = yaml.safe_load(git(pr.remote, "show", f"{pr.merge_sha}:{workflow}"))
        if "pull_request" not in _triggers(doc):
            return JobRun(False, output=f"{workflow} does not run on pull requests")
        event, sha, ref = "pull_request", pr.merge_sha, f"refs/pull/{pr.number}/merge"
    workspace = tmp / "runner" / "work" / "wenzheng"
    workspace.mkdir(parents=True)
    context = {
        "github.event_name": event, "github.sha": sha, "github.ref": ref,
        "github.repository": REPOSITORY, "github.workspace": str(workspace),
        "github.event.pull_request.number": str(pr.number),
        "github.event.pull_request.base.sha": pr.base_sha,
        "github.event.pull_request.base.ref": "main",
        "github.event.pull_request.head.sha": pr.head_sha,
        "github.event.pull_request.user.login": pr.author,
    }

    def expand(text: Any) -> str:
        def one(m: re.Match) -> str:
            if m[1] not in context:
                raise Unemulated(f"the expression ${{{{ {m[1]} }}}} is not emulated")
            return context[m[1]]
        return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", one, str(text))

    env = _runner_env(tmp)
    env.update({"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_SHA": sha,
                "GITHUB_REF": ref, "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_WORKSPACE": str(workspace),
                "GITHUB_BASE_REF": "main", "GITHUB_HEAD_REF": f"pr{pr.number}",
                "RUNNER_TEMP": str(tmp / "runner" / "temp")})
    spec = doc["jobs"][job]
    for scope in (doc.get("env") or {}, spec.get("env") or {}):
        env.update({k: expand(v) for k, v in scope.items()})
    run = JobRun(True)
    for i, step in enumerate(spec["steps"]):
        name = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
        if "if" in step:
            raise Unemulated(f"step {name!r} has a condition")
        uses, options = step.get("uses"), {k: expand(v) for k, v in (step.get("with") or {}).items()}
        if uses is not None and uses.startswith("actions/checkout@"):
            unknown = set(options) - {"ref", "path", "fetch-depth", "persist-credentials"}
            if unknown:
                raise Unemulated(f"actions/checkout options {sorted(unknown)}")
            dest = workspace / options.get("path", "")
            _clone(pr.remote, dest, options.get("ref") or ref, int(options.get("fetch-depth", 1)))
            run.steps.append((name, 0))
            continue
        if uses is not None and uses.startswith("actions/setup-python@"):
            _python_on_path(tmp, env, options["python-version"])
            run.steps.append((name, 0))
            continue
        if uses is not None:
            raise Unemulated(f"the action {uses} is not emulated")
        step_env = {**env, **{k: expand(v) for k, v in (step.get("env") or {}).items()}}
        cwd = workspace / step.get("working-directory", "")
        code, out = _bash(expand(step["run"]), cwd, step_env, tmp)
        run.output += f"== {name}\n{out}"
        run.steps.append((name, code))
        if code != 0:
            run.ok = False
            break
    return run


def run_gitlab_job(pr: PullRequest, tmp: Path, job: str = "check") -> JobRun:
    """Run ``job`` of .gitlab-ci.yml (the default branch's: see
    docs/governance.md) in a merge-request pipeline for ``pr``."""
    doc = yaml.safe_load(git(pr.remote, "show", f"{pr.base_sha}:.gitlab-ci.yml"))
    spec = doc[job]
    if not any("merge_request_event" in rule.get("if", "") for rule in spec.get("rules", [])):
        return JobRun(False, output=f"the {job} job does not run in merge-request pipelines")
    image = spec.get("image") or (doc.get("default") or {}).get("image", "")
    m = re.fullmatch(r"python:(\d+\.\d+)", image)
    if not m:
        raise Unemulated(f"the image {image!r} is not emulated")
    builds = tmp / "builds"
    project = builds / REPOSITORY
    env = _runner_env(tmp)
    diff_base = git(pr.remote, "merge-base", "main", pr.head_sha).strip()
    env.update({"CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "merge_request_event",
                "CI_PROJECT_DIR": str(project), "CI_BUILDS_DIR": str(builds),
                "CI_PROJECT_PATH": REPOSITORY, "CI_DEFAULT_BRANCH": "main",
                "CI_COMMIT_SHA": pr.head_sha, "CI_COMMIT_REF_NAME": f"pr{pr.number}",
                "CI_MERGE_REQUEST_IID": str(pr.number),
                "CI_MERGE_REQUEST_DIFF_BASE_SHA": diff_base,
                "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": f"pr{pr.number}",
                "GITLAB_USER_LOGIN": pr.author})
    for scope in (doc.get("variables") or {}, spec.get("variables") or {}):
        env.update({k: str(v) for k, v in scope.items()})
    depth = int(env.get("GIT_DEPTH", "20"))
    _clone(pr.remote, project, f"refs/merge-requests/{pr.number}/head", depth)
    _python_on_path(tmp, env, m[1])
    before = spec.get("before_script", (doc.get("default") or {}).get("before_script", []))
    lines = [*before, *spec["script"]]
    code, out = _bash("\n".join(lines) + "\n", project, env, tmp)
    return JobRun(code == 0, [(job, code)], out)
