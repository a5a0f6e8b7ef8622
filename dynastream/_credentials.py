"""
Database credentials from AWS: a Secrets Manager secret, or IAM authentication tokens.

Each source hooks into SQLAlchemy's `do_connect` event, so it runs for every
new connection and for nothing else: a pooled connection reused across warm
invocations costs no AWS call. boto3 is imported here only, when one of these
sources is configured (DESIGN §2.10).
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import attrs

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL, Dialect

    from ._settings import Settings

__all__ = [
    "DatabaseSecret",
    "IamAuthentication",
    "SecretsManagerCredentials",
    "credentials_for",
    "is_authentication_failure",
]

# RDS secrets name the engine; the driver dynastream uses for each.
_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "aurora-postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "aurora": "mysql+pymysql",
    "aurora-mysql": "mysql+pymysql",
}
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


@attrs.frozen
class DatabaseSecret:
    """
    An RDS-shaped secret: `{"username", "password", "host", "port", "dbname", "engine"}`.

    Only `username` and `password` are required. The password never appears
    in the repr.
    """

    username: str
    password: str = attrs.field(repr=False)
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    engine: str | None = None

    @classmethod
    def from_json(cls, text: str, secret_id: str) -> DatabaseSecret:
        """
        Read the secret's JSON text.

        Raises:
            ConfigurationError: It is not an RDS-shaped secret (the message
                names the secret and the field, never a value).
        """
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConfigurationError(f"secret {secret_id!r} is not a JSON object (expected the RDS shape)")
        for key in ("username", "password"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ConfigurationError(f"secret {secret_id!r} has no {key!r} string")
        port = data.get("port")
        try:
            port = None if port in (None, "") else int(port)
        except (TypeError, ValueError):
            raise ConfigurationError(f"secret {secret_id!r} has a 'port' that is not a number") from None
        return cls(
            username=data["username"],
            password=data["password"],
            host=data.get("host") or None,
            port=port,
            dbname=data.get("dbname") or None,
            engine=data.get("engine") or None,
        )


def is_authentication_failure(error: BaseException) -> bool:
    """
    Return whether `error` is the server refusing the user name or password.

    psycopg reports a refused password without a SQLSTATE, so the server's
    message is read as well ("password authentication failed", or "PAM
    authentication failed" for an expired IAM token).
    """
    current: BaseException | None = error
    while current is not None:
        if getattr(current, "sqlstate", None) in ("28000", "28P01"):
            return True
        arguments = getattr(current, "args", ())
        if type(current).__module__.startswith("pymysql") and arguments and arguments[0] == 1045:
            return True
        if type(current).__module__.startswith(("psycopg", "psycopg2")) and (
            "authentication failed" in str(current)
        ):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def _aws_client(service: str, region: str | None) -> Any:
    import boto3
    from botocore.exceptions import NoRegionError

    try:
        session: Any = boto3.session.Session()
        return session.client(service, region_name=region)
    except NoRegionError:
        raise ConfigurationError(
            f"no AWS region for {service}: set DYNASTREAM_AWS_REGION (or AWS_REGION)"
        ) from None


class SecretsManagerCredentials:
    """
    The user name and password of an RDS-shaped Secrets Manager secret.

    The secret is read once per process and cached. When the server refuses
    the cached password (the secret was rotated), the secret is read again and
    the connection tried once more with the new value.

    Args:
        secret_id: The secret's name or ARN.
        region: Its region; boto3's default when omitted.
        client: A `secretsmanager` client to use (tests); built on first use.
    """

    def __init__(self, secret_id: str, *, region: str | None = None, client: Any = None) -> None:
        self.secret_id = secret_id
        self.region = region
        self._client = client
        self._secret: DatabaseSecret | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SecretsManagerCredentials(secret_id={self.secret_id!r}, region={self.region!r})"

    def secret(self, *, refresh: bool = False) -> DatabaseSecret:
        """
        Return the secret, read from Secrets Manager the first time or when `refresh`.

        Raises:
            ConfigurationError: The secret cannot be read, or has not the RDS shape.
        """
        with self._lock:
            if self._secret is None or refresh:
                self._secret = self._read()
            return self._secret

    def _read(self) -> DatabaseSecret:
        from botocore.exceptions import ClientError

        if self._client is None:
            self._client = _aws_client("secretsmanager", self.region)
        try:
            response = self._client.get_secret_value(SecretId=self.secret_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise ConfigurationError(
                f"cannot read secret {self.secret_id!r} from Secrets Manager: {code}"
            ) from None
        if "SecretString" not in response:
            raise ConfigurationError(f"secret {self.secret_id!r} is binary; expected the RDS JSON shape")
        return DatabaseSecret.from_json(response["SecretString"], self.secret_id)

    def complete_url(self, url: URL | None) -> URL:
        """
        Fill in what `url` leaves out (all of it, when None) from the secret.

        The URL's own driver, host, port and database win: pointing the URL
        at an RDS Proxy endpoint while the secret names the instance works.
        The password is never put into the URL; it is given per connection.
        """
        from sqlalchemy.engine import URL

        secret = self.secret()
        if url is None:
            driver = _DRIVERS.get((secret.engine or "").lower())
            if driver is None:
                raise ConfigurationError(
                    f"secret {self.secret_id!r} names no engine dynastream knows "
                    "(postgres, mysql, aurora-postgresql, aurora-mysql): set DYNASTREAM_DATABASE_URL "
                    "to the driver, e.g. postgresql+psycopg://"
                )
            url = URL.create(driver)
        return url.set(
            username=secret.username,
            password=None,
            host=url.host or secret.host,
            port=url.port or secret.port,
            database=url.database or secret.dbname,
        )

    def install(self, engine: Engine) -> None:
        """
        Give every new connection of `engine` the secret's user name and password.
        """
        from sqlalchemy import event

        @event.listens_for(engine, "do_connect")
        def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
            secret = self.secret()
            cparams.update(user=secret.username, password=secret.password)
            try:
                return dialect.connect(*cargs, **cparams)
            except Exception as error:
                if not is_authentication_failure(error):
                    raise
            # Refused: the secret may have been rotated since it was read. Read it
            # again and try once more; a second refusal is the caller's to see.
            secret = self.secret(refresh=True)
            cparams.update(user=secret.username, password=secret.password)
            return dialect.connect(*cargs, **cparams)


class IamAuthentication:
    """
    IAM database authentication: a fresh token as the password of each new connection.

    A token is valid for 15 minutes, but only to open a connection; a
    connection lives on after its token expires. Tokens are signed locally by
    boto3 (`rds.generate_db_auth_token`), with no call to AWS.

    Args:
        region: The database's region; boto3's default when omitted.
        client: An `rds` client to use (tests); built on first use.
    """

    def __init__(self, *, region: str | None = None, client: Any = None) -> None:
        self.region = region
        self._client = client

    def __repr__(self) -> str:
        return f"IamAuthentication(region={self.region!r})"

    def complete_url(self, url: URL | None) -> URL:
        """
        Check that `url` names the host and user a token is signed for.

        Raises:
            ConfigurationError: It does not.
        """
        if url is None or not url.host or not url.username:
            raise ConfigurationError(
                "DYNASTREAM_CREDENTIALS=iam needs DYNASTREAM_DATABASE_URL with a user and host, "
                "e.g. postgresql+psycopg://app_user@cluster.cluster-xyz.eu-west-1.rds.amazonaws.com/app"
            )
        return url.set(password=None)

    def token(self, host: str, port: int, user: str) -> str:
        """
        Return a new authentication token for `user` at `host:port`.
        """
        if self._client is None:
            self._client = _aws_client("rds", self.region)
        token: str = self._client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
        return token

    def install(self, engine: Engine) -> None:
        """
        Give every new connection of `engine` a fresh token as its password.
        """
        from sqlalchemy import event

        default_port = _DEFAULT_PORTS.get(engine.dialect.name, 0)

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Dialect, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
            port = int(cparams.get("port") or default_port)
            cparams["password"] = self.token(cparams["host"], port, cparams["user"])


def credentials_for(settings: Settings) -> SecretsManagerCredentials | IamAuthentication | None:
    """
    Return the credentials source `settings` configures; None for credentials in the URL.
    """
    if settings.credentials == "secrets_manager":
        assert settings.secret_id is not None  # noqa: S101 - Settings checks it
        return SecretsManagerCredentials(settings.secret_id, region=settings.aws_region)
    if settings.credentials == "iam":
        return IamAuthentication(region=settings.aws_region)
    return None
