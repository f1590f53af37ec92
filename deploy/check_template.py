"""Checks template.yaml after SAM's own transform, as CloudFormation would receive it.

Fails (exit 1, one line per finding) when:
- any IAM policy statement has a wildcard resource ("*");
- a role Lambda assumes allows an action beyond reading the bucket's listing and its objects'
  ACLs, and writing to the functions' own log groups;
- a function is not the arm64 `bootstrap` built by cargo-lambda from a workspace package.
"""

import copy
import os
import pathlib
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUNCTION_ACTIONS = {"s3:ListBucket", "s3:GetObjectAcl", "logs:CreateLogStream", "logs:PutLogEvents"}
FUNCTIONS = {"SequentialFunction": "sequential", "SpawnBlockingFunction": "spawn-blocking", "JoinAllFunction": "join-all"}


class NoManagedPolicies:
    """The template names no managed policy, so there is nothing to look up in IAM."""

    def load(self):
        return {}


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements(role):
    for policy in role["Properties"].get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            yield policy["PolicyName"], statement


def assumed_by_lambda(role):
    for statement in as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"]):
        services = as_list(statement.get("Principal", {}).get("Service", []))
        if "lambda.amazonaws.com" in services:
            return True
    return False


def findings(source, transformed):
    resources = transformed["Resources"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for managed in resource["Properties"].get("ManagedPolicyArns", []):
            yield f"{name}: managed policy {managed} (its resources and actions are not ours to check)"
        for policy, statement in statements(resource):
            for target in as_list(statement.get("Resource", [])):
                if target == "*":
                    yield f'{name}/{policy}: Resource "*"'
            if assumed_by_lambda(resource):
                for action in as_list(statement["Action"]):
                    if action not in FUNCTION_ACTIONS:
                        yield f"{name}/{policy}: action {action} beyond {sorted(FUNCTION_ACTIONS)}"
    for logical_id, package in FUNCTIONS.items():
        function = source["Resources"].get(logical_id)
        if function is None:
            yield f"{logical_id}: missing"
            continue
        build_method = function.get("Metadata", {}).get("BuildMethod")
        if build_method != "rust-cargolambda":
            yield f"{logical_id}: BuildMethod {build_method!r}, expected rust-cargolambda"
        code_uri = function["Properties"].get("CodeUri")
        manifest = ROOT / str(code_uri) / "Cargo.toml"
        if code_uri != f"functions/{package}" or not manifest.exists():
            yield f"{logical_id}: CodeUri {code_uri!r} is not the workspace package functions/{package}"
        deployed = resources[logical_id]["Properties"]
        if deployed.get("Architectures") != ["arm64"] or deployed.get("Handler") != "bootstrap":
            yield f"{logical_id}: not an arm64 bootstrap ({deployed.get('Architectures')}, {deployed.get('Handler')})"
        if deployed.get("Runtime") != "provided.al2023":
            yield f"{logical_id}: runtime {deployed.get('Runtime')}, expected provided.al2023"


def main():
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    source, errors = decode(str(path))
    if errors:
        for error in errors:
            print(f"{path}: {error}")
        return 1
    # The transform wants packaged code (what `sam deploy` uploads) and a region to name ARNs in.
    packaged = copy.deepcopy(source)
    for logical_id in FUNCTIONS:
        if logical_id in packaged["Resources"]:
            packaged["Resources"][logical_id]["Properties"]["CodeUri"] = f"s3://example-artifacts/{logical_id}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    transformed = transform(packaged, {"BucketName": "example-bucket"}, NoManagedPolicies())
    problems = list(findings(source, transformed))
    for problem in problems:
        print(f"{path}: {problem}")
    if not problems:
        print(f"{path}: least privilege and function packaging OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
