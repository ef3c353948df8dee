"""What may be in the archive: one definition, used by the full check
(``wenzheng check``), the pull-request check (``wenzheng check --base``) and
the history audit (``wenzheng audit``).

Every path of the repository is one of three kinds (:func:`kind_of`):

* a **record**: anything under ``petitions/``. Only plain files (git mode
  100644, not executable, not a symbolic link, not a gitlink) named
  ``petition.yaml`` or ``<YYYYMMDDTHHMMSSZ>-<kind>[-<n>].yaml`` in a folder
  ``petitions/<YYYY>/<MM>/<id>/``, of at most :data:`MAX_RECORD_BYTES`, may be
  there (:func:`entry_problem`). Anything else (an ``index.html``, a binary, a
  ``.gitattributes`` that would re-encode every clone's YAML, a script, a
  folder whose name ends in a space) is refused, naming the file, the rule and
  what to do instead.
* the archive's **configuration**: ``departments.yaml``, ``rules.yaml`` and
  the audit's acknowledgements (``audit/acknowledgements/``, docs/audit.md),
  which the centre changes.
* the **project**: everything else (code, workflows, packaging, the root
  ``.gitattributes``, documents), which only the accounts listed under
  ``maintainers:`` in departments.yaml change.
"""

from __future__ import annotations

from generator import records as r
from generator.problems import Problem

RECORD, CONFIG, PROJECT = "record", "config", "project"
ARCHIVE_ROOT = "petitions/"
CONFIG_FILES = ("departments.yaml", "rules.yaml")
# The centre's acknowledgements of audit violations (generator.audit.ACK_FOLDER).
CENTRE_FOLDERS = ("audit/acknowledgements/",)
FILE_MODE = "100644"
# The largest record file: the bridge accepts 32 KiB a submission and no
# record holds attachments, so 1 MiB leaves room and refuses blobs.
MAX_RECORD_BYTES = 1024 * 1024

_LAYOUT = "petitions/<YYYY>/<MM>/<id>/ as petition.yaml or <YYYYMMDDTHHMMSSZ>-<kind>.yaml"
_MODES = {
    "100755": ("executable", "is marked executable",
               "records are plain data: commit it without the executable bit "
               "(git update-index --chmod=-x <file>)"),
    "120000": ("symlink", "is a symbolic link",
               "commit the record itself as a plain file in its petition folder, not a link"),
    "160000": ("gitlink", "is a gitlink (a submodule or nested repository)",
               "records are plain files: remove the submodule (git rm --cached <path>) "
               "and add the record files themselves"),
    "040000": ("not-a-file", "is a folder where a record file is expected",
               "petition folders hold record files only, no sub-folders"),
}


def kind_of(path: str) -> str:
    """Return what ``path`` is: a record path, the archive's configuration or the project's."""
    if path.startswith(ARCHIVE_ROOT):
        return RECORD
    if path in CONFIG_FILES or path.startswith(CENTRE_FOLDERS):
        return CONFIG
    return PROJECT


def record_name(name: str) -> bool:
    """True when ``name`` may name a file in a petition folder."""
    return name == r.PETITION_FILE or r.EVENT_FILE_RE.match(name) is not None


def placed(path: str) -> tuple[str, str] | None:
    """Return (folder, file name) when ``path`` is a record file's place:
    ``petitions/<YYYY>/<MM>/<id>/`` and an allowed file name."""
    m = r.FOLDER_RE.match(path)
    if not m or not record_name(m["name"]):
        return None
    return path.rsplit("/", 1)[0], m["name"]


def place_problem(path: str) -> Problem | None:
    """Return the refusal of a path under ``petitions/`` off the layout, else None."""
    if not path.startswith(ARCHIVE_ROOT) or placed(path) is not None:
        return None
    name = path.rsplit("/", 1)[-1]
    if name.startswith(".git"):
        return Problem(
            path, None, "attributes-file",
            f"{name} in petitions/ would change how git stores or checks out the records "
            "(e.g. working-tree-encoding turns every clone's YAML into another encoding)",
            "remove it; records are UTF-8 YAML as committed, and git settings are the "
            "maintainers' to change, at the top of the repository")
    if r.FOLDER_RE.match(path):
        return Problem(
            path, None, "stray-file",
            f"{name!r} is not a record file name; a petition folder holds only "
            "petition.yaml and event files",
            "name event files <YYYYMMDDTHHMMSSZ>-<kind>.yaml after their `at` in UTC "
            "(e.g. 20261125T080000Z-reply.yaml); anything else (pages, attachments, "
            "scripts) does not belong in the archive")
    return Problem(
        path, None, "stray-file",
        "this file is not where petition records live (every folder and file name must "
        "fit the layout exactly: no spaces, no other folders)",
        f"records live in {_LAYOUT}; move or remove it")


def size_problem(path: str, size: int) -> Problem | None:
    """Return the refusal of a record larger than :data:`MAX_RECORD_BYTES`, else None."""
    if size <= MAX_RECORD_BYTES:
        return None
    return Problem(
        path, None, "too-large",
        f"the file is {size:,} bytes; a record file holds at most {MAX_RECORD_BYTES:,} bytes",
        "records hold text only; keep documents and pictures out of the archive and "
        "summarise them in the record")


def entry_problem(path: str, mode: str, size: int | None = None) -> Problem | None:
    """Return the refusal of the entry ``path`` (git ``mode``, ``size`` in bytes
    when known) under ``petitions/``, or None when it may be in the archive.

    Paths outside ``petitions/`` are not records: None (who may change them is
    the pull-request rules' business).
    """
    if not path.startswith(ARCHIVE_ROOT):
        return None
    problem = place_problem(path)
    if problem is not None:
        return problem
    if mode != FILE_MODE:
        code, what, hint = _MODES.get(mode, ("not-a-file", f"has git mode {mode}",
                                             "commit it as a plain file (mode 100644)"))
        return Problem(path, None, code,
                       f"the file {what}; the archive holds only plain files (mode 100644)", hint)
    return size_problem(path, size) if size is not None else None
