"""
The examples' SAM templates carry the recommended event source mapping settings and a
least-privilege role. (`nox -s examples` also validates them with cfn-lint.)

The Orders example has two: `template.yaml` reads the table's DynamoDB stream,
`template-kinesis.yaml` a Kinesis data stream the table writes to; one handler.py serves both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from dynastream._replication.handler import DEFAULT_TOMBSTONE_RETENTION

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "examples" / "orders" / "template.yaml"
ORDERS_KINESIS = ROOT / "examples" / "orders" / "template-kinesis.yaml"
PAYMENTS = ROOT / "examples" / "payments" / "template.yaml"
TEMPLATES = [ORDERS, ORDERS_KINESIS, PAYMENTS]
# The read actions Lambda lists for an event source mapping, per kind of stream:
# https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html (execution role permissions) and
# https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-create.html (a standard
# iterator: kinesis:SubscribeToShard is for enhanced fan-out consumers only).
STREAMS_READ = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
KINESIS_READ = {
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
}
# Per template: the SAM event type, the read actions it needs, and DYNASTREAM_SOURCE.
SOURCES = {
    ORDERS: ("DynamoDB", STREAMS_READ, None),
    ORDERS_KINESIS: ("Kinesis", KINESIS_READ, "kinesis"),
    PAYMENTS: ("DynamoDB", STREAMS_READ, None),
}


def template_id(path: Path) -> str:
    return f"{path.parent.name}-kinesis" if path == ORDERS_KINESIS else path.parent.name


class _Tagged:
    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form functions (!Ref, !GetAtt, !Sub...) as tagged values."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> _Tagged:
    if isinstance(node, yaml.ScalarNode):
        return _Tagged("!" + suffix, loader.construct_scalar(node))
    if isinstance(node, yaml.SequenceNode):
        return _Tagged("!" + suffix, loader.construct_sequence(node))
    return _Tagged("!" + suffix, loader.construct_mapping(node))  # type: ignore[arg-type]


_TemplateLoader.add_multi_constructor("!", _tagged)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_TemplateLoader)  # noqa: S506 - a safe loader with tags


@pytest.mark.parametrize("path", TEMPLATES, ids=template_id)
def test_the_event_source_mapping_has_the_recommended_settings(path: Path) -> None:
    resources = load(path)["Resources"]
    (function,) = [r for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]
    (event,) = function["Properties"]["Events"].values()
    settings = event["Properties"]

    assert SOURCES[path][0] == event["Type"]
    assert ["ReportBatchItemFailures"] == settings["FunctionResponseTypes"]
    assert settings["BisectBatchOnFunctionError"] is True
    assert 0 <= settings["MaximumRetryAttempts"] <= 100  # finite
    assert "TRIM_HORIZON" == settings["StartingPosition"]
    destination = settings["DestinationConfig"]["OnFailure"]["Destination"]
    assert "!GetAtt" == destination.tag
    assert "AWS::SQS::Queue" == resources[destination.value.split(".")[0]]["Type"]
    assert "VpcConfig" in function["Properties"]
    # No record older than the tombstones reaches the function: a late change of a deleted
    # item always meets its tombstone (KDS keeps records longer than DynamoDB Streams).
    assert 60 <= settings["MaximumRecordAgeInSeconds"] <= DEFAULT_TOMBSTONE_RETENTION.total_seconds()


@pytest.mark.parametrize("path", TEMPLATES, ids=template_id)
def test_the_role_grants_only_what_the_function_needs(path: Path) -> None:
    resources = load(path)["Resources"]
    (function,) = [r for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]
    role = resources[function["Properties"]["Role"].value.split(".")[0]]
    statements = [
        s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]
    ]

    assert "Policies" not in function["Properties"]  # no SAM policy templates or managed policies added
    assert "ManagedPolicyArns" not in role["Properties"]
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement["Sid"]
        if statement["Resource"] == "*":  # only where AWS has no resource-level permissions
            assert all(action.startswith("ec2:") for action in actions), statement["Sid"]
    granted = {
        action
        for s in statements
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    _, needed, _ = SOURCES[path]
    stream_actions = {action for action in granted if action.split(":")[0] in {"dynamodb", "kinesis"}}
    assert needed == stream_actions  # the reads of its own kind of stream, nothing more
    assert "sqs:SendMessage" in granted
    assert not {"dynamodb:PutItem", "dynamodb:Scan", "secretsmanager:PutSecretValue"} & granted


def test_the_kinesis_role_reads_only_the_stream_the_mapping_and_the_table_use() -> None:
    resources = load(ORDERS_KINESIS)["Resources"]
    (stream_name,) = [name for name, r in resources.items() if r["Type"] == "AWS::Kinesis::Stream"]
    (event,) = resources["ReplicationFunction"]["Properties"]["Events"].values()
    (table,) = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    statements = [
        s
        for policy in resources["ReplicationRole"]["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
    ]
    (read,) = [s for s in statements if any(a.startswith("kinesis:") for a in s["Action"])]

    expected = ("!GetAtt", f"{stream_name}.Arn")
    assert expected == (event["Properties"]["Stream"].tag, event["Properties"]["Stream"].value)
    assert expected == (read["Resource"].tag, read["Resource"].value)
    streaming = table["Properties"]["KinesisStreamSpecification"]
    assert expected == (streaming["StreamArn"].tag, streaming["StreamArn"].value)


def test_the_kinesis_table_times_its_changes_to_the_microsecond() -> None:
    """Two changes of one item in one millisecond cannot be ordered: the example asks for microseconds."""
    resources = load(ORDERS_KINESIS)["Resources"]
    (table,) = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]

    specification = table["Properties"]["KinesisStreamSpecification"]

    assert "MICROSECOND" == specification["ApproximateCreationDateTimePrecision"]
    assert "Orders" == table["Properties"]["TableName"]  # the table handler.py replicates


def test_the_kinesis_stream_is_encrypted_and_its_retention_stated() -> None:
    resources = load(ORDERS_KINESIS)["Resources"]
    (stream,) = [r for r in resources.values() if r["Type"] == "AWS::Kinesis::Stream"]
    (event,) = resources["ReplicationFunction"]["Properties"]["Events"].values()

    assert "KMS" == stream["Properties"]["StreamEncryption"]["EncryptionType"]
    # Kept at least as long as the mapping still takes a record.
    assert (
        stream["Properties"]["RetentionPeriodHours"] * 3600
        >= event["Properties"]["MaximumRecordAgeInSeconds"]
    )


def test_both_orders_templates_run_the_same_handler_differing_only_in_the_source() -> None:
    functions = [
        load(path)["Resources"]["ReplicationFunction"]["Properties"] for path in (ORDERS, ORDERS_KINESIS)
    ]
    streams, kinesis = (function["Environment"]["Variables"] for function in functions)

    assert functions[0]["Handler"] == functions[1]["Handler"]
    assert functions[0]["CodeUri"] == functions[1]["CodeUri"]
    assert {"DYNASTREAM_SOURCE": "kinesis"} == {k: v for k, v in kinesis.items() if k not in streams}
    assert [] == [k for k in streams if repr(streams[k]) != repr(kinesis.get(k))]


def test_each_example_reaches_its_credentials_its_own_way() -> None:
    orders, payments = (
        load(path)["Resources"]["ReplicationFunction"]["Properties"]["Environment"]["Variables"]
        for path in (ORDERS, PAYMENTS)
    )

    assert ("secrets_manager", "verify") == (orders["DYNASTREAM_CREDENTIALS"], orders["DYNASTREAM_TLS"])
    assert ("iam", "verify") == (payments["DYNASTREAM_CREDENTIALS"], payments["DYNASTREAM_TLS"])


@pytest.mark.parametrize("path", TEMPLATES, ids=template_id)
def test_the_function_environment_is_valid_dynastream_settings(path: Path) -> None:
    from dynastream import Settings

    variables = load(path)["Resources"]["ReplicationFunction"]["Properties"]["Environment"]["Variables"]
    # Parameters become placeholders; what is checked is every name and every literal value.
    environ = {
        name: (value if isinstance(value, str) else "mysql+pymysql://user@db.example.com/x")
        for name, value in variables.items()
    }

    settings = Settings.from_env(environ)

    assert variables["DYNASTREAM_CREDENTIALS"] == settings.credentials
    assert (SOURCES[path][2] or "dynamodb") == settings.source
    fields = attrs.fields_dict(Settings)
    assert [] == [name for name in variables if name.removeprefix("DYNASTREAM_").lower() not in fields]
