"""
Development sessions: `nox -s demo`, `tests`, `tests_staging`, `sources`, `lint`, `typecheck`, `docs`,
`bench`, `reliability`, `reliability_kinesis`, `examples`.

Each session installs what it needs. Database tests run against SQLite always,
and against PostgreSQL and MariaDB/MySQL when `DYNASTREAM_TEST_POSTGRES_URL` and
`DYNASTREAM_TEST_MYSQL_URL` are set (under `CI=true` they must be).
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


# Installed packages are compiled to bytecode, as pip does and uv does not by default: where
# PYTHONDONTWRITEBYTECODE is set (container images often set it), every interpreter the tests
# start would otherwise compile SQLAlchemy, boto3 and moto from source, every time.
COMPILED = {"UV_COMPILE_BYTECODE": "1"}


def install_groups(session: nox.Session, *groups: str, extras: str = "") -> None:
    requirements = nox.project.dependency_groups(PYPROJECT, *groups)
    session.install(*requirements, env=COMPILED)
    session.install("-e", f".{extras}", env=COMPILED)


@nox.session
def demo(session: nox.Session) -> None:
    """Replicate a demo DynamoDB table into SQLite: moto plays DynamoDB, no servers, no AWS account."""
    session.install("-e", ".[local]")
    session.run("dynastream", "demo", *session.posargs)


# The tests of what runs outside Lambda (the stream runner, the backfill, failed batches read
# again, the commands and the demo, on moto) take minutes: `nox -s tests` leaves them to
# `nox -s sources`, and stays quick.
OUTSIDE_LAMBDA = ("tests/sources", "tests/cli")
IN_PARALLEL = ("-n", "2", "--dist", "loadgroup")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite but the outside-Lambda tests (pass pytest arguments after --)."""
    install_groups(session, "test", extras="[mysql,postgres,aws,speedups]")
    # --ignore leaves out what pytest finds in those folders, not a test named after --.
    ignored = [f"--ignore={path}" for path in OUTSIDE_LAMBDA]
    # Replication's statement path on every engine; `tests_staging` runs its staging path.
    session.run(
        "pytest", *ignored, *(session.posargs or IN_PARALLEL), env={"DYNASTREAM_BULK_PATH": "statements"}
    )


# The tests that replicate through App.replicate, whose bulk path the staging session changes.
REPLICATING = (
    "tests/replication",
    "tests/test_connections.py",
    "tests/test_observability.py",
    "tests/test_privacy.py",
    "tests/test_events.py",
)


@nox.session
def tests_staging(session: nox.Session) -> None:
    """Run the replication tests on the staging bulk path (pass pytest arguments after --)."""
    install_groups(session, "test", extras="[mysql,postgres,aws,speedups]")
    # The tests' MySQL URLs get local_infile=1 (tests/conftest.py), which LOAD DATA LOCAL needs.
    arguments = session.posargs or [*IN_PARALLEL, *REPLICATING]
    session.run("pytest", *arguments, env={"DYNASTREAM_BULK_PATH": "staging"})


@nox.session
def sources(session: nox.Session) -> None:
    """Run the outside-Lambda tests, on moto: runner, backfill, commands, demo (pytest arguments after --)."""
    install_groups(session, "test", extras="[mysql,postgres,aws,speedups]")
    session.run("pytest", *(session.posargs or [*IN_PARALLEL, *OUTSIDE_LAMBDA]))


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and common mistakes with ruff."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package strictly, and user-style code in tests/typing."""
    install_groups(session, "typecheck", extras="[mysql,postgres,aws,speedups]")
    session.run("mypy", "dynastream")
    session.run("mypy", "tests/typing")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict."""
    install_groups(session, "docs")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def reliability(session: nox.Session) -> None:
    """Run the fault-injection suite (e.g. -- --histories 500; -- --workers 8 --concurrent-only)."""
    install_groups(session, "test", extras="[mysql,postgres,aws,speedups]")
    session.run("python", "-m", "reliability", *session.posargs)
    # The input faults of the suite, as property tests on every engine: fuzzed malformed
    # events, boundary numbers, fuzzed attribute names, canary secrets and personal data.
    session.run(
        "pytest",
        "-q",
        "tests/test_fuzz_events.py",
        "tests/test_privacy.py",
        "tests/replication/test_event_images.py::test_attribute_names_never_become_sql",
        "tests/replication/test_replication.py::test_boundary_numbers_round_trip_exactly_or_fail_loudly",
        "tests/replication/test_replication.py::test_identifiers_only_come_from_the_table_and_are_quoted",
    )


@nox.session
def reliability_kinesis(session: nox.Session) -> None:
    """Run the fault-injection suite on Kinesis Data Streams histories (more arguments after --)."""
    install_groups(session, "test", extras="[mysql,postgres,aws,speedups]")
    # Duplicated, reordered and tied change records; the property tests are the reliability session's.
    session.run("python", "-m", "reliability", "--source", "kinesis", *session.posargs)


# cfn-lint 1.58 validates SAM templates offline but does not look inside the properties of
# a SAM DynamoDB or Kinesis event in a full template; 1.53.3, through aws-sam-translator, does.
CFN_LINT_VERSIONS = ("1.53.3", "1.58.0")
TEMPLATES = (
    "examples/orders/template.yaml",
    "examples/orders/template-kinesis.yaml",
    "examples/payments/template.yaml",
)
# One wrong value each, which cfn-lint must refuse, or the check proves nothing: inside a SAM
# DynamoDB event and inside a SAM Kinesis event (1.53.3 only, see above), and the table's
# Kinesis timestamp precision (both versions).
BROKEN_TEMPLATES = (
    (TEMPLATES[0], "MaximumRetryAttempts: 10", "MaximumRetryAttempts: many", CFN_LINT_VERSIONS[:1]),
    (TEMPLATES[1], "MaximumRetryAttempts: 10", "MaximumRetryAttempts: many", CFN_LINT_VERSIONS[:1]),
    (
        TEMPLATES[1],
        "ApproximateCreationDateTimePrecision: MICROSECOND",
        "ApproximateCreationDateTimePrecision: NANOSECOND",
        CFN_LINT_VERSIONS,
    ),
)


@nox.session
def examples(session: nox.Session) -> None:
    """Run the examples' tests and validate their SAM templates offline with cfn-lint."""
    install_groups(session, "test", extras="[mysql,postgres,aws,speedups]")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "examples", "tests/test_examples.py")
    broken = []
    for number, (template, right, wrong, versions) in enumerate(BROKEN_TEMPLATES):
        original = Path(template).read_text()
        if right not in original:
            session.error(f"{template} no longer holds {right!r}: update BROKEN_TEMPLATES")
        path = Path(session.create_tmp()) / f"broken-template-{number}.yaml"
        path.write_text(original.replace(right, wrong, 1))
        broken.append((path, versions))
    for version in CFN_LINT_VERSIONS:
        session.install(f"cfn-lint=={version}")
        session.run("cfn-lint", *TEMPLATES)
        for path, versions in broken:
            if version in versions:
                session.run("cfn-lint", str(path), success_codes=[2, 6, 10, 14])


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks, print ratios against their baselines, write docs/benchmark-results.md."""
    install_groups(session, "bench", extras="[mysql,postgres,aws,speedups]")
    args = session.posargs or ["--write", "docs/benchmark-results.md"]
    session.run("python", "-m", "benchmarks", *args)
