"""
Settings: every `DYNASTREAM_*` variable is read, typed and checked, and no secret is shown.
"""

from __future__ import annotations

import traceback

import pytest

import dynastream
from dynastream import ConfigurationError, Settings

PASSWORD = "canary-Pa55word-7f3e"  # noqa: S105 - a canary, not a credential


def test_defaults_are_lambda_shaped() -> None:
    settings = Settings.from_env({})

    assert (None, "url", "auto", "queue", "auto", 1, 0, 600, 10.0) == (
        settings.database_url,
        settings.credentials,
        settings.tls,
        settings.pool,
        settings.bulk_path,
        settings.pool_size,
        settings.pool_max_overflow,
        settings.pool_recycle_seconds,
        settings.time_margin_seconds,
    )
    assert ("INFO", True, "dynastream") == (settings.log_level, settings.metrics, settings.metrics_namespace)


def test_every_variable_is_read_and_typed() -> None:
    environ = {
        "DYNASTREAM_DATABASE_URL": "postgresql+psycopg://app@db.example.com/app",
        "DYNASTREAM_CREDENTIALS": "Secrets_Manager",
        "DYNASTREAM_SECRET_ID": "prod/app/db",
        "DYNASTREAM_AWS_REGION": "eu-west-1",
        "DYNASTREAM_TLS": "verify",
        "DYNASTREAM_TLS_CA_FILE": "/var/task/global-bundle.pem",
        "DYNASTREAM_POOL": "null",
        "DYNASTREAM_BULK_PATH": "Staging",
        "DYNASTREAM_POOL_SIZE": "2",
        "DYNASTREAM_POOL_MAX_OVERFLOW": "1",
        "DYNASTREAM_POOL_RECYCLE_SECONDS": "120",
        "DYNASTREAM_TIME_MARGIN_SECONDS": "2.5",
        "DYNASTREAM_LOG_LEVEL": "debug",
        "DYNASTREAM_METRICS": "false",
        "DYNASTREAM_METRICS_NAMESPACE": "orders-replica",
    }

    assert Settings(
        database_url="postgresql+psycopg://app@db.example.com/app",
        credentials="secrets_manager",
        secret_id="prod/app/db",  # noqa: S106 - a secret's name
        aws_region="eu-west-1",
        tls="verify",
        tls_ca_file="/var/task/global-bundle.pem",
        pool="null",
        bulk_path="staging",
        pool_size=2,
        pool_max_overflow=1,
        pool_recycle_seconds=120,
        time_margin_seconds=2.5,
        log_level="DEBUG",
        metrics=False,
        metrics_namespace="orders-replica",
    ) == Settings.from_env(environ)


def test_explicit_arguments_win_over_the_environment() -> None:
    environ = {"DYNASTREAM_POOL_SIZE": "not a number", "DYNASTREAM_DATABASE_URL": "sqlite://"}

    settings = Settings.from_env(environ, pool_size=3, database_url="sqlite:///x.db")

    assert (3, "sqlite:///x.db") == (settings.pool_size, settings.database_url)


def test_empty_variables_count_as_unset() -> None:
    assert Settings() == Settings.from_env({"DYNASTREAM_POOL_SIZE": "", "DYNASTREAM_TLS": " "})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DYNASTREAM_CREDENTIALS", "password"),
        ("DYNASTREAM_TLS", "maybe"),
        ("DYNASTREAM_POOL", "big"),
        ("DYNASTREAM_BULK_PATH", "copy"),
        ("DYNASTREAM_POOL_SIZE", "one"),
        ("DYNASTREAM_POOL_SIZE", "0"),
        ("DYNASTREAM_POOL_MAX_OVERFLOW", "-1"),
        ("DYNASTREAM_POOL_RECYCLE_SECONDS", "1.5"),
        ("DYNASTREAM_TIME_MARGIN_SECONDS", "soon"),
        ("DYNASTREAM_TIME_MARGIN_SECONDS", "-1"),
        ("DYNASTREAM_LOG_LEVEL", "LOUD"),
        ("DYNASTREAM_METRICS", "perhaps"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value})


def test_a_bad_url_names_its_variable_without_echoing_the_password() -> None:
    with pytest.raises(ConfigurationError, match="DYNASTREAM_DATABASE_URL") as raised:
        Settings.from_env({"DYNASTREAM_DATABASE_URL": f"not a url {PASSWORD}"})

    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://app:{PASSWORD}/orders",  # "@host" forgotten: the password where the port goes
        f"mysql+pymysql://app:{PASSWORD}:3306/orders",
    ],
)
def test_a_mistyped_url_is_a_configuration_error_that_never_shows_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="DYNASTREAM_DATABASE_URL") as from_env:
        Settings.from_env({"DYNASTREAM_DATABASE_URL": url})
    with pytest.raises(ConfigurationError, match="DYNASTREAM_DATABASE_URL") as from_app:
        dynastream.App(database_url=url).container.settings()

    for raised in (from_env, from_app):
        assert PASSWORD not in str(raised.value)
        assert PASSWORD not in "".join(traceback.format_exception(raised.value))


def test_secrets_manager_needs_a_secret_id() -> None:
    with pytest.raises(ConfigurationError, match="DYNASTREAM_SECRET_ID"):
        Settings.from_env({"DYNASTREAM_CREDENTIALS": "secrets_manager"})


def test_iam_authentication_refuses_to_run_without_tls() -> None:
    with pytest.raises(ConfigurationError, match="DYNASTREAM_TLS"):
        Settings(database_url="postgresql+psycopg://app@db.example.com/app", credentials="iam", tls="disable")


def test_repr_never_shows_the_password() -> None:
    settings = Settings(database_url=f"mysql+pymysql://app:{PASSWORD}@db.example.com/app")

    assert PASSWORD not in repr(settings)
    assert "app:***@db.example.com" in repr(settings)


def test_settings_are_frozen() -> None:
    settings = Settings()

    with pytest.raises(AttributeError):
        settings.pool_size = 5  # type: ignore[misc]


def test_app_database_url_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNASTREAM_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("DYNASTREAM_POOL_SIZE", "4")

    settings = dynastream.App(database_url="sqlite://").container.settings()

    assert ("sqlite://", 4) == (settings.database_url, settings.pool_size)
