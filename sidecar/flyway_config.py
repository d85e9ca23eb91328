"""The Flyway configuration a project already has, read as Flyway 11 reads it: `flyway.conf`
(ConfigUtils.loadConfigurationFromString) or `flyway.toml` (its `[flyway]` table and the current
environment's), for the keys that decide what a migrate reads and runs (`Settings`). Connection keys
are the plan's business and are not read; no value is ever echoed in a message.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Settings:
    """What a Flyway configuration says about reading and running a folder; Flyway's defaults otherwise."""

    locations: tuple[Path, ...] = ()  # from `locations`, resolved from the configuration file's folder
    table: str = "flyway_schema_history"
    schema: str | None = None  # `defaultSchema`, or the first of `schemas`: where the table lives
    schemas: tuple[str, ...] = ()  # `schemas`: created when missing, as Flyway's createSchemas does
    placeholders: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # lower-cased names
    placeholder_prefix: str = "${"
    placeholder_suffix: str = "}"
    placeholder_separator: str = ":"
    placeholder_replacement: bool = True
    mixed: bool = False
    group: bool = False
    validate_naming: bool = False
    baseline_version: str | None = None  # `baselineVersion` when `baselineOnMigrate` is on
    environment: str = "default"
    source: str = ""  # the configuration file, for messages



# Keys that change what runs, which sidecar does not follow: a configuration that sets one is refused.
_NOT_FOLLOWED = ("target", "cherryPick", "skipExecutingMigrations", "callbacks", "skipDefaultCallbacks",
                 "resolvers", "skipDefaultResolvers", "initSql", "sqlMigrationPrefix", "baselineMigrationPrefix",
                 "undoSqlMigrationPrefix", "repeatableSqlMigrationPrefix", "sqlMigrationSeparator",
                 "sqlMigrationSuffixes", "scriptPlaceholderPrefix", "scriptPlaceholderSuffix")


def step_settings(paths: tuple[Path, ...], placeholders: tuple[tuple[str, str], ...],
                  environ: Mapping[str, str]) -> tuple[Settings, list[str]]:
    """The Flyway configuration a step's `sql` names (or Flyway's defaults), with the plan's placeholders
    over it; problems for the step's `sql` key."""
    settings, problems = Settings(), []
    configs = [p for p in paths if p.suffix in (".conf", ".toml")]
    if configs and len(paths) > 1:
        problems.append("a Flyway configuration file comes alone: its locations are the folders")
    elif configs:
        settings, problems = read_config(configs[0], environ)
    if placeholders:
        merged = {**settings.placeholders, **{k.lower(): v for k, v in placeholders}}
        settings = replace(settings, placeholders=MappingProxyType(merged))
    return settings, problems


def quoted(name: str) -> str:
    """An identifier as Flyway quotes it (and PostgreSQL reads it): case kept; a plain lower-case name as it is."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def read_config(path: Path, environ: Mapping[str, str]) -> tuple[Settings, list[str]]:
    """A `flyway.conf` or `flyway.toml`; problems name the file and key. Connection keys (url, user,
    password, ...) are the plan's business and are not read; no value is ever echoed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Settings(), [f"{path}: cannot read the Flyway configuration ({exc.__class__.__name__}); fix the"
                            " step's flyway_config"]
    if path.suffix == ".toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return Settings(), [f"{path}: not valid TOML ({exc})"]
        values = {k: v for k, v in doc.get("flyway", {}).items() if not isinstance(v, dict)}
        placeholders = doc.get("flyway", {}).get("placeholders", {})
        environment = str(values.get("environment", "default"))
        env_table = doc.get("environments", {}).get(environment, {})
        for key in ("schemas", "defaultSchema"):
            if key in env_table and key not in values:
                values[key] = env_table[key]
    else:
        props = _properties(text, environ)
        values = {k.removeprefix("flyway."): v for k, v in props.items()
                  if k.startswith("flyway.") and not k.startswith("flyway.placeholders.")}
        placeholders = {k.removeprefix("flyway.placeholders."): v for k, v in props.items()
                        if k.startswith("flyway.placeholders.")}
        environment = str(values.get("environment", "default"))
    return _settings(path, values, placeholders, environment)


def _properties(text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """ConfigUtils.loadConfigurationFromString: lines trimmed, backslashes kept as written, `${VAR}`
    from the environment ("" when unset), then java.util.Properties' `key=value` / `key: value` lines."""
    text = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: environ.get(m[1], ""), text.replace("\r\n", "\n"))
    props: dict[str, str] = {}
    for line in (raw.strip() for raw in text.split("\n")):
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)", line)
        if match:
            props[match[1]] = match[2]
    return props


# Every setting Flyway knows (ConfigUtils' constants, flyway-core c5e20fc, and the TOML model's): Flyway stops
# on any other ("Unknown configuration property"), so a misspelt key is named here rather than ignored.
_KNOWN = frozenset((*_NOT_FOLLOWED, "baselineDescription", "baselineOnMigrate", "baselineVersion", "batch",
                    "callbackLocations", "cleanDisabled", "communityDBSupportEnabled", "configFileEncoding",
                    "configFiles", "connectRetries", "connectRetriesInterval", "createSchemas", "defaultSchema",
                    "detectEncoding", "driver", "dryRunOutput", "encoding", "environment", "errorOverrides",
                    "executeInTransaction", "failOnMissingLocations", "failOnMissingTarget", "group",
                    "ignoreMigrationPatterns", "installedBy", "jarDirs", "kerberosConfigFile", "licenseKey",
                    "locations", "lockRetryCount", "loggers", "mixed", "outOfOrder", "outputLogsInJson",
                    "outputProgress", "outputQueryResults", "outputType", "password", "placeholderPrefix",
                    "placeholderReplacement", "placeholderSeparator", "placeholderSuffix", "powershellExecutable",
                    "reportEnabled", "reportFilename", "schemas", "stream", "table", "tablespace", "url", "user",
                    "validateMigrationNaming", "validateOnMigrate", "workingDirectory", "placeholders"))


def _settings(path: Path, values: dict[str, object], placeholders: dict[str, object],
              environment: str) -> tuple[Settings, list[str]]:
    problems: list[str] = []
    for key in sorted(k for k in values if "." not in k and k not in _KNOWN):  # `plugin.key` settings: their own
        close = difflib.get_close_matches(key, sorted(_KNOWN), n=1)
        problems.append(f"{path}: {key}: not a Flyway setting (Flyway stops on it)"
                        + (f"; did you mean {close[0]}?" if close else ""))

    def listed(key: str) -> tuple[str, ...]:
        value = values.get(key, "")
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(str(v).strip() for v in items if str(v).strip())

    def flag(key: str, default: bool) -> bool:
        value = values.get(key, default)
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"

    for key in _NOT_FOLLOWED:
        if key in values:
            problems.append(f"{path}: {key}: sidecar does not follow Flyway's {key}; remove it, or keep running"
                            " this folder with Flyway")
    encoding = str(values.get("encoding", "UTF-8")).upper().replace("-", "")
    if encoding != "UTF8":
        problems.append(f"{path}: encoding: sidecar reads migrations as UTF-8; convert the files and remove it")
    locations = []
    for location in listed("locations") or ("classpath:db/migration",):
        kind, _, where = location.rpartition(":")
        if kind in ("", "classpath"):  # a Java project's classpath is its resources folder
            resolved = path.parent / "src/main/resources" / where.lstrip("/")
        elif kind == "filesystem":
            resolved = path.parent / where
        else:
            problems.append(f"{path}: locations: {location!r} is not a folder sidecar can read; use"
                            " filesystem:<folder>")
            continue
        locations.append(resolved.resolve())
    schemas = listed("schemas")
    table = str(values.get("table", "flyway_schema_history"))
    return Settings(
        locations=tuple(locations), table=table, schema=str(values["defaultSchema"]) if "defaultSchema" in values
        else (schemas[0] if schemas else None), schemas=schemas,
        placeholders=MappingProxyType({str(k).lower(): str(v) for k, v in placeholders.items()}),
        placeholder_prefix=str(values.get("placeholderPrefix", "${")),
        placeholder_suffix=str(values.get("placeholderSuffix", "}")),
        placeholder_separator=str(values.get("placeholderSeparator", ":")),
        placeholder_replacement=flag("placeholderReplacement", True), mixed=flag("mixed", False),
        group=flag("group", False), validate_naming=flag("validateMigrationNaming", False),
        baseline_version=str(values.get("baselineVersion", "1")) if flag("baselineOnMigrate", False) else None,
        environment=environment, source=str(path)), problems
