"""
Settings: what a deployment configures, read from `DYNASTREAM_*` variables.

Every setting has one variable (`Settings.from_env` reads them; explicit
arguments win), and every bad value raises `ConfigurationError` naming that
variable, never echoing a value that may hold a password.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "BulkPath",
    "CredentialsSource",
    "PoolMode",
    "Settings",
    "SourceName",
    "TlsMode",
    "requested_bulk_path",
]

_PREFIX = "DYNASTREAM_"

CredentialsSource = Literal["url", "secrets_manager", "iam"]
TlsMode = Literal["auto", "verify", "disable"]
PoolMode = Literal["queue", "null"]
BulkPath = Literal["auto", "statements", "staging"]
SourceName = Literal["dynamodb", "kinesis"]

_CREDENTIALS: tuple[CredentialsSource, ...] = ("url", "secrets_manager", "iam")
_TLS: tuple[TlsMode, ...] = ("auto", "verify", "disable")
_POOLS: tuple[PoolMode, ...] = ("queue", "null")
_BULK_PATHS: tuple[BulkPath, ...] = ("auto", "statements", "staging")
_SOURCES: tuple[SourceName, ...] = ("dynamodb", "kinesis")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_POISON_POLICIES = ("report", "quarantine")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _hide_password(url: str | None) -> str:
    if url is None:
        return "None"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return repr(make_url(url).render_as_string(hide_password=True))
    except (ArgumentError, ValueError):  # ValueError: a password where the port goes (no "@host")
        return "'<unparseable URL>'"


def _variable(attribute: attrs.Attribute[Any]) -> str:
    return _PREFIX + attribute.name.upper()


def _one_of(choices: tuple[str, ...]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ConfigurationError(
                f"{_variable(attribute)} must be one of {', '.join(choices)}; got {value!r}"
            )

    return check


def _at_least(minimum: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise ConfigurationError(f"{_variable(attribute)} must be a number >= {minimum}; got {value!r}")

    return check


def _database_url(_instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(value)
    except (ArgumentError, ValueError):
        # The value may hold a password (a forgotten "@host" puts it where the
        # port goes, and int() quotes it): name the variable, never echo it.
        raise ConfigurationError(
            f"{_variable(attribute)} is not a SQLAlchemy URL (dialect+driver://user@host:port/database)"
        ) from None


def _upper(value: str) -> str:
    return value.upper()


def _text(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError(f"{_variable(attribute)} must be a non-empty string")


@attrs.frozen
class Settings:
    """
    How dynastream connects and behaves.

    Explicit arguments win over the environment: `Settings.from_env()` reads
    the `DYNASTREAM_*` variables (each attribute's name in capitals), and
    `App(database_url=...)` overrides them. The how-to page *Settings* has
    the full table.

    Attributes:
        database_url: SQLAlchemy URL of the target database
            (`DYNASTREAM_DATABASE_URL`), for example
            `postgresql+psycopg://user@host/db` or `mysql+pymysql://user@host/db`.
            Its password never appears in a repr or a log. With
            `credentials="secrets_manager"` it may be omitted (the secret
            names the engine, host, port and database) or give only what
            differs from the secret, such as an RDS Proxy host.
        credentials: Where the user name and password come from
            (`DYNASTREAM_CREDENTIALS`): `"url"` (the default), `"secrets_manager"`
            (an RDS-shaped secret, cached per process and read again when the
            server refuses the password) or `"iam"` (IAM database
            authentication: a fresh token for each new connection).
        secret_id: The secret's name or ARN (`DYNASTREAM_SECRET_ID`), for
            `credentials="secrets_manager"`.
        aws_region: The region of the secret or of the IAM token
            (`DYNASTREAM_AWS_REGION`); boto3's default (`AWS_REGION` on Lambda)
            when omitted.
        tls: Transport security (`DYNASTREAM_TLS`): `"auto"` (the default)
            verifies the server's certificate and host name for every host but
            the local one (localhost, 127.0.0.1, ::1, a Unix socket);
            `"verify"` verifies it for every host; `"disable"` leaves TLS to the
            URL and logs a warning when the engine is built.
        tls_ca_file: The CA certificates to verify the server against
            (`DYNASTREAM_TLS_CA_FILE`), for example the RDS global bundle;
            the system's trusted CAs when omitted.
        pool: `"queue"` (the default) keeps `pool_size` connections open across
            invocations; `"null"` opens one per batch and closes it after,
            for RDS Proxy (`DYNASTREAM_POOL`).
        bulk_path: How built-in replication sends a batch's rows
            (`DYNASTREAM_BULK_PATH`): `"statements"` sends each chunk of rows
            as one JSON parameter of the guarded upsert; `"staging"` loads
            them into a temporary table first (PostgreSQL `COPY`, MySQL and
            MariaDB `LOAD DATA LOCAL INFILE`, which needs `local_infile=1`
            on the URL and on the server), then runs the same guarded upsert
            from it; `"auto"` (the default) picks per engine what was
            measured faster, and statements with `pool="null"` (a temporary
            table pins an RDS Proxy session) or where `LOAD DATA LOCAL` is
            not enabled. SQLite always takes statements.
        source: Where replicated tables' changes come from (`DYNASTREAM_SOURCE`):
            `"dynamodb"` (the default) for DynamoDB Streams, `"kinesis"` for
            Kinesis Data Streams for DynamoDB. The two order changes
            differently, so a table is replicated from one only;
            `App.replicate(..., source=)` sets it per table.
        pool_size: Connections kept per process (`DYNASTREAM_POOL_SIZE`,
            default 1: a Lambda environment runs one invocation at a time).
        pool_max_overflow: Connections opened beyond `pool_size` when all are
            busy (`DYNASTREAM_POOL_MAX_OVERFLOW`, default 0).
        pool_recycle_seconds: A connection older than this is closed and
            replaced before use (`DYNASTREAM_POOL_RECYCLE_SECONDS`, default
            600). Every connection is also pinged before use, so one the server
            closed while Lambda was frozen is never used.
        time_margin_seconds: Work is not started, nor retried, nor another
            bisection step taken, when less than this much of the Lambda
            invocation's time is left (`DYNASTREAM_TIME_MARGIN_SECONDS`,
            default 10): the records not applied are reported instead, and
            Lambda's timeout never cuts a transaction short.
        on_poison: What a handler registered without `on_poison=` does with
            a record it cannot apply (`DYNASTREAM_ON_POISON`): `"report"` it
            (the default; the batch stops there) or `"quarantine"` it and go
            on. A handler's own `on_poison=` wins.
        log_level: The level of the `dynastream` logger
            (`DYNASTREAM_LOG_LEVEL`, default `"INFO"`).
        metrics: Whether to emit CloudWatch Embedded Metric Format metrics
            (`DYNASTREAM_METRICS`, default true).
        metrics_namespace: Their CloudWatch namespace
            (`DYNASTREAM_METRICS_NAMESPACE`, default `"dynastream"`).

    Raises:
        ConfigurationError: A value is invalid; the message names its variable.

    Examples:
        >>> import dynastream
        >>> dynastream.Settings.from_env({"DYNASTREAM_DATABASE_URL": "postgresql+psycopg://app:pw@db/app"})
        Settings(database_url='postgresql+psycopg://app:***@db/app', credentials='url', ...)
    """

    database_url: str | None = attrs.field(default=None, repr=_hide_password, validator=_database_url)
    credentials: CredentialsSource = attrs.field(default="url", validator=_one_of(_CREDENTIALS))
    secret_id: str | None = attrs.field(default=None, validator=_text)
    aws_region: str | None = attrs.field(default=None, validator=_text)
    tls: TlsMode = attrs.field(default="auto", validator=_one_of(_TLS))
    tls_ca_file: str | None = attrs.field(default=None, validator=_text)
    pool: PoolMode = attrs.field(default="queue", validator=_one_of(_POOLS))
    bulk_path: BulkPath = attrs.field(default="auto", validator=_one_of(_BULK_PATHS))
    source: SourceName = attrs.field(default="dynamodb", validator=_one_of(_SOURCES))
    pool_size: int = attrs.field(default=1, validator=_at_least(1))
    pool_max_overflow: int = attrs.field(default=0, validator=_at_least(0))
    pool_recycle_seconds: int = attrs.field(default=600, validator=_at_least(1))
    time_margin_seconds: float = attrs.field(default=10.0, validator=_at_least(0))
    on_poison: str = attrs.field(default="report", validator=_one_of(_POISON_POLICIES))
    log_level: str = attrs.field(default="INFO", converter=_upper, validator=_one_of(_LOG_LEVELS))
    metrics: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    metrics_namespace: str = attrs.field(default="dynastream", validator=_text)

    def __attrs_post_init__(self) -> None:
        if self.credentials == "secrets_manager" and not self.secret_id:
            raise ConfigurationError(
                f"{_PREFIX}CREDENTIALS=secrets_manager needs {_PREFIX}SECRET_ID (the secret's name or ARN)"
            )
        if self.credentials != "secrets_manager" and not self.database_url:
            return  # no database yet: building the engine says so
        if self.credentials == "iam" and self.tls == "disable":
            raise ConfigurationError(
                f"{_PREFIX}CREDENTIALS=iam needs TLS: IAM database authentication refuses "
                f"unencrypted connections, so {_PREFIX}TLS cannot be 'disable'"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """
        Read settings from `DYNASTREAM_*` environment variables.

        Empty variables count as unset.

        Args:
            environ: The variables to read; `os.environ` when omitted.
            overrides: Settings that win over the environment.

        Raises:
            ConfigurationError: A value is invalid; the message names its variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for attribute in attrs.fields(cls):
            text = env.get(_variable(attribute), "").strip()
            if not text or attribute.name in overrides:
                continue
            values[attribute.name] = _parse(attribute, text)
        values.update(overrides)
        return cls(**values)


def requested_bulk_path(settings: Settings) -> BulkPath:
    """
    Return the bulk path `settings` ask replication to take.

    `auto` with `pool="null"` asks for statements: that setting is RDS
    Proxy's, where a temporary table pins the client's session to one
    database connection for as long as it lives (and the staging table would be
    created again for every batch).
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-pinning.html
    """
    if settings.bulk_path == "auto" and settings.pool == "null":
        return "statements"
    return settings.bulk_path


def _parse(attribute: attrs.Attribute[Any], text: str) -> Any:
    variable = _variable(attribute)
    if attribute.type in ("int", int):
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(f"{variable} must be a whole number; got {text!r}") from None
    if attribute.type in ("float", float):
        try:
            return float(text)
        except ValueError:
            raise ConfigurationError(f"{variable} must be a number of seconds; got {text!r}") from None
    if attribute.type in ("bool", bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigurationError(f"{variable} must be true or false; got {text!r}")
    if attribute.name in ("credentials", "tls", "pool", "bulk_path", "on_poison"):
        return text.lower()
    return text
