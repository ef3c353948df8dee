"""The bridge's configuration: a YAML file, overridden by environment variables.

Every option is one row of :data:`OPTIONS` (its dotted key, type, default and a
one-line description); ``docs/bridge.md`` documents the same keys and a test
checks that they agree. An environment variable ``WENZHENG_BRIDGE__A__B``
overrides the key ``a.b`` (so secrets need not be written to the file).
Loading reports every problem at once, each naming its key and its source.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

ENV_PREFIX = "WENZHENG_BRIDGE__"
PROVIDERS = ("local", "github", "gitlab", "gitea")


@dataclass(frozen=True)
class Option:
    key: str
    type: type
    default: Any
    doc: str
    choices: tuple[str, ...] = ()
    secret: bool = False

    @property
    def attr(self) -> str:
        return self.key.replace(".", "_")


OPTIONS: tuple[Option, ...] = (
    Option("listen.host", str, "127.0.0.1", "Address uvicorn listens on."),
    Option("listen.port", int, 8765, "Port uvicorn listens on."),
    Option("public_url", str, "http://127.0.0.1:8765", "The bridge's public base URL, used in receipt links."),
    Option("site_url", str, "", "The public archive site's base URL; receipts link to `<site_url>/petitions/<id>/`. Empty: no site link."),
    Option("database", str, "bridge.sqlite3", "Path of the SQLite outbox (WAL mode); relative paths are relative to the config file."),
    Option("sqlite_synchronous", str, "full", "SQLite `synchronous` setting: `full` survives power loss, `normal` only process crashes.",
           choices=("full", "normal")),
    Option("timezone", str, "Asia/Shanghai", "The city's time zone; `received_at` is written in it."),
    Option("secret", str, "", "HMAC key (at least 32 characters) for form tokens, receipt tokens and pseudonyms. Keep it stable: receipts are derived from it.", secret=True),
    Option("contact_recipient", str, "", "age X25519 recipient (`age1…`) that contact details are sealed to. The identity (private key) is not needed by the bridge."),
    Option("contact_retention_days", int, 180, "Days after submission when sealed contact details are deleted."),
    Option("districts", list, [], "If not empty, the districts a citizen may choose from; otherwise free text."),
    Option("limits.max_body_bytes", int, 32768, "Largest request body accepted, in bytes."),
    Option("limits.title", int, 100, "Longest title, in characters."),
    Option("limits.body", int, 5000, "Longest petition text, in characters."),
    Option("limits.district", int, 40, "Longest district name, in characters."),
    Option("limits.contact", int, 200, "Longest contact field, in characters."),
    Option("limits.comment", int, 1000, "Longest rating comment, in characters."),
    Option("abuse.pow_bits", int, 16, "Proof-of-work difficulty: leading zero bits of SHA-256(token:nonce). 16 bits is about 65,000 hashes."),
    Option("abuse.min_fill_seconds", float, 3.0, "Least time between loading the form and submitting it."),
    Option("abuse.max_form_age_seconds", float, 86400.0, "Longest time a form token stays valid."),
    Option("abuse.allow_without_pow", bool, True, "Accept forms without a proof of work (browsers without JavaScript) under `abuse.nojs_per_hour`; such petitions are labelled for moderation."),
    Option("abuse.nojs_per_hour", float, 3.0, "Submissions without proof of work allowed per address prefix per hour."),
    Option("abuse.per_minute", float, 2.0, "Sustained submissions and ratings allowed per address prefix per minute."),
    Option("abuse.burst", int, 10, "Submissions allowed at once per address prefix before the per-minute rate applies."),
    Option("abuse.ipv4_prefix", int, 24, "IPv4 prefix length that shares one rate-limit bucket."),
    Option("abuse.ipv6_prefix", int, 56, "IPv6 prefix length that shares one rate-limit bucket."),
    Option("abuse.trusted_proxies", list, [], "Networks (CIDR) of reverse proxies whose X-Forwarded-For is believed; from anyone else it is ignored (uvicorn's own proxy-header handling is off)."),
    Option("abuse.state_file", str, "", "SQLite file keeping the rate-limit buckets across restarts; empty: the outbox's path with `.limits` appended. Relative paths are relative to the config file."),
    Option("allowed_origins", list, [], "Origins (`https://host[:port]`) besides `public_url`'s and `site_url`'s whose pages may post forms and ratings; a post whose Origin (or, without one, Referer) is another site is refused."),
    Option("forge.provider", str, "local", "Where pull requests go.", choices=PROVIDERS),
    Option("forge.base_branch", str, "main", "The archive's main branch."),
    Option("forge.branch_prefix", str, "bridge/", "Prefix of the branches the bridge creates; only these are ever cleaned up."),
    Option("forge.moderation_label", str, "needs-moderation", "Label put on pull requests whose text had personal data masked or a street address flagged, or came without proof of work."),
    Option("forge.label", str, "petition", "Label put on every pull request the bridge opens."),
    Option("forge.min_interval_seconds", float, 1.0, "Least time between two requests to the forge (one request at a time)."),
    Option("forge.max_backoff_seconds", float, 300.0, "Longest wait after forge errors before trying again."),
    Option("forge.poll_seconds", float, 30.0, "How often open pull requests are checked for merging."),
    Option("forge.id_check_seconds", float, 300.0, "How often the petition ids of open pull requests are looked up on main; one that another channel (the centre, an import) took meanwhile is renumbered and its batch published again as a new pull request, the old one closed."),
    Option("forge.cleanup_seconds", float, 3600.0, "How often branches under `forge.branch_prefix` that no pending or open batch needs are deleted (0: never; `wenzheng bridge cleanup-branches` does it by hand). Run one bridge per archive."),
    Option("forge.batch.enabled", bool, True, "Put many submissions into one pull request."),
    Option("forge.batch.max_items", int, 50, "Most submissions and ratings in one pull request."),
    Option("forge.batch.max_wait_seconds", float, 10.0, "Longest a submission waits for others to fill a batch."),
    Option("forge.local.repo", str, "", "Local provider: a git working repository (non-bare) the bridge commits in; created by cloning `forge.local.remote` if missing."),
    Option("forge.local.remote", str, "", "Local provider: the remote (path or URL) branches are pushed to and main is read from."),
    Option("forge.local.author", str, "wenzheng-bridge <wenzheng-bridge@localhost>", "Local provider: commit author."),
    Option("forge.api_url", str, "", "GitHub, GitLab or Gitea: the API base URL (`https://api.github.com`, `https://gitlab.example/api/v4`, `https://gitea.example/api/v1`)."),
    Option("forge.owner", str, "", "GitHub or Gitea: the repository owner."),
    Option("forge.repo", str, "", "GitHub or Gitea: the repository name. GitLab: the project path (`group/archive`) or numeric id."),
    Option("forge.token", str, "", "Access token (GitHub PAT, GitLab project token, Gitea token).", secret=True),
    Option("forge.github_app_id", str, "", "GitHub App: the App id (instead of `forge.token`)."),
    Option("forge.github_installation_id", str, "", "GitHub App: the installation id on the archive repository."),
    Option("forge.github_private_key", str, "", "GitHub App: the App's private key (PEM text, or a path to it).", secret=True),
    Option("log_level", str, "info", "Log level for the JSON logs.", choices=("debug", "info", "warning", "error")),
)

BridgeConfig = make_dataclass(
    "BridgeConfig",
    [(o.attr, o.type) for o in OPTIONS] + [("base_dir", str)],
    frozen=True,
)
BridgeConfig.__doc__ = "The bridge's settings, one attribute per option key (dots become underscores)."


def origin_of(url: str) -> str | None:
    """Return the origin (``scheme://host[:port]``, lower case) of a URL, or None."""
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class ConfigError(ValueError):
    """The configuration is wrong; ``problems`` lists every problem, one a line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and not any(o.key == full for o in OPTIONS):
            flat.update(_flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


def _coerce(option: Option, value: Any, where: str) -> tuple[Any, str | None]:
    if option.type is bool and isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True, None
        if low in ("0", "false", "no", "off"):
            return False, None
    if option.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if option.type in (int, float) and isinstance(value, str):
        try:
            value = option.type(value)
        except ValueError:
            pass
    if option.type is list and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if option.type is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, option.type) or (option.type is int and isinstance(value, bool)):
        return None, (f"{where}: `{option.key}` must be {option.type.__name__}, got {value!r}; "
                      f"fix the value (default: {option.default!r}).")
    if option.choices and value not in option.choices:
        return None, f"{where}: `{option.key}` is {value!r}; choose one of {', '.join(option.choices)}."
    return value, None


def load_config(path: str | Path | None, env: Mapping[str, str],
                overrides: Mapping[str, Any] | None = None) -> BridgeConfig:
    """Return the configuration from a YAML file, environment and overrides.

    Raises :class:`ConfigError` listing every problem at once.
    """
    problems: list[str] = []
    values: dict[str, Any] = {o.key: o.default for o in OPTIONS}
    by_key = {o.key: o for o in OPTIONS}
    base_dir = Path(path).resolve().parent if path else Path.cwd()
    sources: list[tuple[str, dict[str, Any]]] = []
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError([f"{path}: cannot read the configuration: {exc}"]) from exc
        if not isinstance(data, Mapping):
            raise ConfigError([f"{path}: the configuration must be a mapping of keys to values."])
        sources.append((str(path), _flatten(data)))
    env_values = {}
    for name, raw in env.items():
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX):].lower().replace("__", ".")
            env_values[key] = raw
    sources.append(("environment", env_values))
    if overrides:
        sources.append(("overrides", dict(overrides)))
    for where, flat in sources:
        for key, raw in flat.items():
            option = by_key.get(key)
            if option is None:
                label = f"{ENV_PREFIX}{key.upper().replace('.', '__')}" if where == "environment" else key
                problems.append(f"{where}: unknown key `{label}`; see docs/bridge.md for the keys.")
                continue
            value, problem = _coerce(option, raw, where)
            if problem:
                problems.append(problem)
            else:
                values[key] = value
    problems.extend(_check(values))
    if problems:
        raise ConfigError(problems)
    if not Path(values["database"]).is_absolute():
        values["database"] = str(base_dir / values["database"])
    if not values["abuse.state_file"]:
        values["abuse.state_file"] = values["database"] + ".limits"
    for key in ("forge.local.repo", "abuse.state_file"):
        if values[key] and not Path(values[key]).is_absolute():
            values[key] = str(base_dir / values[key])
    return BridgeConfig(**{by_key[k].attr: v for k, v in values.items()}, base_dir=str(base_dir))


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if len(values["secret"]) < 32:
        problems.append("`secret` must be at least 32 characters (set WENZHENG_BRIDGE__SECRET); "
                        "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`.")
    if not str(values["contact_recipient"]).startswith("age1"):
        problems.append("`contact_recipient` must be an age recipient (`age1…`); create a key pair with "
                        "`wenzheng bridge keygen` and keep the identity offline.")
    try:
        ZoneInfo(values["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"`timezone` {values['timezone']!r} is not a known time zone; use e.g. Asia/Shanghai.")
    for net in values["abuse.trusted_proxies"]:
        try:
            ipaddress.ip_network(str(net), strict=False)
        except ValueError:
            problems.append(f"`abuse.trusted_proxies`: {net!r} is not a network; write it as CIDR, e.g. 10.0.0.0/8.")
    for origin in values["allowed_origins"]:
        if origin_of(str(origin)) != str(origin):
            problems.append(f"`allowed_origins`: {origin!r} is not an origin; write scheme, host and "
                            "port only, e.g. https://archive.example.gov.cn.")
    if values["forge.provider"] == "local":
        if not values["forge.local.remote"]:
            problems.append("`forge.local.remote` is required with the local provider: the repository (path or URL) to push to.")
        if not values["forge.local.repo"]:
            problems.append("`forge.local.repo` is required with the local provider: a working folder for the bridge's clone.")
    else:
        for key in ("forge.api_url", "forge.repo"):
            if not values[key]:
                problems.append(f"`{key}` is required with the {values['forge.provider']} provider.")
        if values["forge.provider"] in ("github", "gitea") and not values["forge.owner"]:
            problems.append(f"`forge.owner` is required with the {values['forge.provider']} provider.")
        app = values["forge.github_app_id"]
        if not values["forge.token"] and not (values["forge.provider"] == "github" and app):
            problems.append("`forge.token` is required (or, for GitHub, `forge.github_app_id`, "
                            "`forge.github_installation_id` and `forge.github_private_key`).")
        if app and not (values["forge.github_installation_id"] and values["forge.github_private_key"]):
            problems.append("`forge.github_app_id` needs `forge.github_installation_id` and `forge.github_private_key`.")
    for key in ("abuse.pow_bits",):
        if not 0 <= values[key] <= 32:
            problems.append(f"`{key}` must be between 0 and 32.")
    for key in ("forge.batch.max_items", "limits.max_body_bytes", "abuse.burst"):
        if values[key] < 1:
            problems.append(f"`{key}` must be at least 1.")
    return problems
