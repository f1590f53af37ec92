"""Checks template.yaml after SAM's own transform, as CloudFormation would receive it.

Fails (exit 1, one line per finding) when:
- any IAM policy statement has a wildcard resource ("*");
- a role Lambda assumes allows an action beyond reading the bucket's listing and its objects'
  ACLs, and writing to the functions' own log groups;
- a function is not the arm64 `bootstrap` built by cargo-lambda from a workspace package;
- the state machine's role allows more than listing the bucket, invoking join-all, writing under
  results/ and managing its own executions; or its definition breaks the States Language
  (cfn-lint's schema, run on it inlined) or is not the Distributed Map the
  docs/scale-out.md describes (ItemReader over ListObjectsV2, ItemBatcher with the bucket as BatchInput,
  join-all as the worker, a ResultWriter, a tolerated failure threshold), or its placeholders
  and the template's DefinitionSubstitutions differ.
"""

import copy
import json
import os
import pathlib
import re
import sys

from cfnlint.api import lint
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUNCTION_ACTIONS = {"s3:ListBucket", "s3:GetObjectAcl", "logs:CreateLogStream", "logs:PutLogEvents"}
FUNCTIONS = {"SequentialFunction": "sequential", "SpawnBlockingFunction": "spawn-blocking", "JoinAllFunction": "join-all"}
STATE_MACHINE = "AuditStateMachine"
STATE_MACHINE_ACTIONS = {
    "s3:ListBucket",
    "lambda:InvokeFunction",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "states:StartExecution",
    "states:DescribeExecution",
    "states:StopExecution",
}
RESULTS_WRITES = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


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


def assumed_by(role, service):
    for statement in as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"]):
        services = as_list(statement.get("Principal", {}).get("Service", []))
        if service in services:
            return True
    return False


def resource_text(target):
    """A resource as a string, whether literal or a !Sub (its template text)."""
    if isinstance(target, dict) and "Fn::Sub" in target:
        sub = target["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return json.dumps(target)


def definition_findings(source):
    machine = source["Resources"].get(STATE_MACHINE)
    if machine is None:
        yield f"{STATE_MACHINE}: missing"
        return
    properties = machine["Properties"]
    path = ROOT / properties.get("DefinitionUri", "")
    text = path.read_text()
    substitutions = properties.get("DefinitionSubstitutions", {})
    used = set(PLACEHOLDER.findall(text))
    if used != set(substitutions):
        yield f"{STATE_MACHINE}: placeholders {sorted(used)} but substitutions {sorted(substitutions)}"
    example = {name: "1" if name in {"BatchSize", "MaxConcurrency", "ToleratedFailurePercentage"} else f"example-{name}"
               for name in used}
    definition = json.loads(PLACEHOLDER.sub(lambda m: example[m.group(1)], text))
    # cfn-lint validates a definition against the States Language schema only when it is inline.
    inline = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {STATE_MACHINE: {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "RoleArn": "arn:aws:iam::123456789012:role/example", "Definition": definition}}},
    }
    for match in lint(json.dumps(inline)):
        yield f"{path.name}: {match}"
    maps = [(name, state) for name, state in definition["States"].items() if state["Type"] == "Map"]
    if len(maps) != 1:
        yield f"{path.name}: expected one Map state, found {len(maps)}"
        return
    name, state = maps[0]
    expectations = {
        "ItemReader.Resource": (state.get("ItemReader", {}).get("Resource"), "arn:aws:states:::s3:listObjectsV2"),
        "ItemReader.Parameters.Bucket": (state.get("ItemReader", {}).get("Parameters", {}).get("Bucket"),
                                         "example-BucketName"),
        "ItemBatcher.BatchInput": (state.get("ItemBatcher", {}).get("BatchInput"), {"bucket": "example-BucketName"}),
        "ItemProcessor.ProcessorConfig.Mode": (state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode"),
                                               "DISTRIBUTED"),
        "ResultWriter.Resource": (state.get("ResultWriter", {}).get("Resource"), "arn:aws:states:::s3:putObject"),
        "ResultWriter.Parameters.Bucket": (state.get("ResultWriter", {}).get("Parameters", {}).get("Bucket"),
                                           "example-ResultsBucketName"),
    }
    for field, (actual, expected) in expectations.items():
        if actual != expected:
            yield f"{path.name}: {name}.{field} is {actual!r}, expected {expected!r}"
    for field in ["MaxItemsPerBatch", "MaxItemsPerBatchPath"]:
        if field in state.get("ItemBatcher", {}):
            break
    else:
        yield f"{path.name}: {name}.ItemBatcher sets no batch size"
    if not {"ToleratedFailurePercentage", "ToleratedFailurePercentagePath"} & set(state):
        yield f"{path.name}: {name} sets no tolerated failure threshold"
    workers = [task for task in state.get("ItemProcessor", {}).get("States", {}).values() if task["Type"] == "Task"]
    if [task.get("Parameters", {}).get("FunctionName") for task in workers] != ["example-WorkerFunctionArn"]:
        yield f"{path.name}: the worker is not one Task invoking WorkerFunctionArn"
    worker_arn = substitutions.get("WorkerFunctionArn")
    if worker_arn != {"Fn::GetAtt": ["JoinAllFunction", "Arn"]}:
        yield f"{STATE_MACHINE}: WorkerFunctionArn is {worker_arn!r}, expected join-all's ARN"


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
            actions = as_list(statement["Action"])
            if assumed_by(resource, "lambda.amazonaws.com"):
                for action in actions:
                    if action not in FUNCTION_ACTIONS:
                        yield f"{name}/{policy}: action {action} beyond {sorted(FUNCTION_ACTIONS)}"
            if assumed_by(resource, "states.amazonaws.com"):
                for action in actions:
                    if action not in STATE_MACHINE_ACTIONS:
                        yield f"{name}/{policy}: action {action} beyond {sorted(STATE_MACHINE_ACTIONS)}"
                if RESULTS_WRITES & set(actions):
                    for target in as_list(statement["Resource"]):
                        if not resource_text(target).endswith("/results/*"):
                            yield f"{name}/{policy}: writes outside results/: {resource_text(target)}"
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
    if STATE_MACHINE in packaged["Resources"]:
        packaged["Resources"][STATE_MACHINE]["Properties"]["DefinitionUri"] = "s3://example-artifacts/audit.asl.json"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    transformed = transform(packaged, {"BucketName": "example-bucket", "ScaleOut": "true"}, NoManagedPolicies())
    problems = list(findings(source, transformed)) + list(definition_findings(source))
    for problem in problems:
        print(f"{path}: {problem}")
    if not problems:
        print(f"{path}: least privilege and function packaging OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
