"""
The examples' SAM templates carry the recommended event source mapping settings and a
least-privilege role. (`nox -s examples` also validates them with cfn-lint.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = [ROOT / "examples" / "orders" / "template.yaml", ROOT / "examples" / "payments" / "template.yaml"]


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


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
def test_the_event_source_mapping_has_the_recommended_settings(path: Path) -> None:
    resources = load(path)["Resources"]
    (function,) = [r for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]
    (event,) = function["Properties"]["Events"].values()
    settings = event["Properties"]

    assert "DynamoDB" == event["Type"]
    assert ["ReportBatchItemFailures"] == settings["FunctionResponseTypes"]
    assert settings["BisectBatchOnFunctionError"] is True
    assert 0 <= settings["MaximumRetryAttempts"] <= 100  # finite
    assert "TRIM_HORIZON" == settings["StartingPosition"]
    destination = settings["DestinationConfig"]["OnFailure"]["Destination"]
    assert "!GetAtt" == destination.tag
    assert "AWS::SQS::Queue" == resources[destination.value.split(".")[0]]["Type"]
    assert "VpcConfig" in function["Properties"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
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
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "sqs:SendMessage"} <= granted
    assert not {"dynamodb:PutItem", "dynamodb:Scan", "secretsmanager:PutSecretValue"} & granted


def test_each_example_reaches_its_credentials_its_own_way() -> None:
    orders, payments = (
        load(path)["Resources"]["ReplicationFunction"]["Properties"]["Environment"]["Variables"]
        for path in TEMPLATES
    )

    assert ("secrets_manager", "verify") == (orders["DYNASTREAM_CREDENTIALS"], orders["DYNASTREAM_TLS"])
    assert ("iam", "verify") == (payments["DYNASTREAM_CREDENTIALS"], payments["DYNASTREAM_TLS"])


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
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
    fields = attrs.fields_dict(Settings)
    assert [] == [name for name in variables if name.removeprefix("DYNASTREAM_").lower() not in fields]
