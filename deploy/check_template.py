"""Checks template.yaml after SAM's own transform, as CloudFormation would receive it.

Fails (exit 1, one line per finding) when:
- any IAM policy statement has a wildcard resource ("*"), but for actions that have no
  resource type (NO_RESOURCE_TYPE), alone in their statement;
- a role Lambda assumes allows an action beyond reading the bucket's listing and its objects'
  ACLs, writing under the findings prefix, delivering to its destinations, writing to the
  functions' own log groups;
- the findings bucket is missing, public, has ACLs enabled, no encryption or no lifecycle rule;
  a function has no EventInvokeConfig with both destinations and a retry count; an alarm is
  missing, notifies no one or reads a metric the metrics line does not emit; or a log level
  offered would drop the metrics line;
- a function is not the arm64 `bootstrap` built by cargo-lambda from a workspace package;
- the state machine's role allows more than reading the parts files under parts/, invoking
  join-all, writing under results/ and managing its own executions; or its definition breaks the
  States Language (cfn-lint's schema, run on it inlined) or is not the run of parts
  docs/scale-out.md describes (a plan step handing join-all the bucket, prefix, inventory and a
  parts folder of the results bucket; one Distributed Map whose ItemReader reads that pass's
  parts file as JSON and hands each part whole to join-all, the one worker, with a ResultWriter
  and a tolerated failure threshold; a collect step handing join-all the pass and the Map's
  output, then a Choice running the Map again while parts are left; a last step handing join-all
  the Map's output, every pass and the bucket; a schedule following ScheduleState), or its
  placeholders and the template's DefinitionSubstitutions differ; the functions' role reads
  objects (s3:GetObject) beyond the results and the findings prefix, or writes beyond parts/,
  outside the map run's own policy, or reads or removes (s3:GetObject, s3:DeleteObject)
  anything but the stored resume tokens elsewhere.
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
FUNCTION_ACTIONS = {
    "s3:ListBucket",
    "s3:GetObjectAcl",
    # Versions (include_versions, and object events naming a version).
    "s3:ListBucketVersions",
    "s3:GetObjectVersionAcl",
    # The bucket's settings, on the bucket alone.
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketAcl",
    "s3:GetBucketVersioning",
    # The account's Block Public Access (no resource type).
    "s3:GetAccountPublicAccessBlock",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    # The findings file and report, under the findings prefix only.
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    # The asynchronous invocations' destinations.
    "events:PutEvents",
    "sqs:SendMessage",
}
FINDINGS_WRITES = {"s3:PutObject", "s3:AbortMultipartUpload"}
# The state machine's steps (join-all) write and read the run's parts folder (parts files, each
# part's report and findings file): in this policy only, on that prefix only.
MAP_RUN_POLICY = "run-parts"
MAP_RUN_READS = {"s3:GetObject"}
MAP_RUN_READ_PREFIXES = ("/parts/*",)
PARTS_WRITES = {"s3:PutObject", "s3:AbortMultipartUpload"}
PARTS_PREFIX = "/parts/*"
# An inventory-sourced run reads the inventory's destination bucket, in this policy only.
INVENTORY_POLICY = "read-inventory"
# The suppression file the SuppressionsUri parameter names: that object only.
SUPPRESSIONS_POLICY = "read-suppressions"
# Security Hub (SecurityHub=true): BatchImportFindings on the account's default product only.
SECURITY_HUB_POLICY = "import-findings"
SECURITY_HUB_IMPORT = {"securityhub:BatchImportFindings":
                       "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default"}
SUPPRESSIONS_READ = {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${Object}", {
    "Object": {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "SuppressionsUri"}]}]}}]}
INVENTORY_READ = "arn:${AWS::Partition}:s3:::${InventoryBucketName}/${InventoryPrefix}*"
# ...and lists it, to find a configuration folder's newest report: each action on its own
# resource only.
INVENTORY_ACTIONS = {"s3:GetObject": INVENTORY_READ, "s3:ListBucket": "arn:${AWS::Partition}:s3:::${InventoryBucketName}"}
# What runs wrote under the findings prefix is read back (resume tokens, the last completed
# run's pointer and findings); only resume tokens are removed.
RESUME_TOKENS = {"s3:GetObject", "s3:DeleteObject"}
RESUME_PREFIX = "/${FindingsPrefix}resume/*"
FINDINGS_READ_PREFIX = "/${FindingsPrefix}*"
# Actions the Service Authorization Reference lists with no resource type: "*" is the only
# resource they take.
NO_RESOURCE_TYPE = {"s3:GetAccountPublicAccessBlock", "s3:ListAllMyBuckets", "organizations:ListAccounts"}
# A sweep's policies (AuditScope account, organization): each action on its one resource. Every
# bucket of the account, since the sweep learns their names from ListBuckets; the member role
# by its name only.
SWEEP_POLICIES = {
    "sweep-account": {
        "s3:ListAllMyBuckets": '"*"',
        "s3:ListBucket": "arn:${AWS::Partition}:s3:::*",
        "s3:ListBucketVersions": "arn:${AWS::Partition}:s3:::*",
        "s3:GetBucketOwnershipControls": "arn:${AWS::Partition}:s3:::*",
        "s3:GetBucketPublicAccessBlock": "arn:${AWS::Partition}:s3:::*",
        "s3:GetBucketAcl": "arn:${AWS::Partition}:s3:::*",
        "s3:GetBucketVersioning": "arn:${AWS::Partition}:s3:::*",
        "s3:GetBucketPolicyStatus": "arn:${AWS::Partition}:s3:::*",
        "s3:GetObjectAcl": "arn:${AWS::Partition}:s3:::*/*",
        "s3:GetObjectVersionAcl": "arn:${AWS::Partition}:s3:::*/*",
    },
    "sweep-organization": {
        "organizations:ListAccounts": '"*"',
        "sts:AssumeRole": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}",
    },
}
BUCKET_SETTINGS_READS = {
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketAcl",
    "s3:GetBucketVersioning",
}
# The audited bucket's listings (current objects, versions) and its objects' ACLs.
BUCKET_LISTINGS = {"s3:ListBucket", "s3:ListBucketVersions"}
OBJECT_ACL_READS = {"s3:GetObjectAcl", "s3:GetObjectVersionAcl"}
FINDINGS_BUCKET = "FindingsBucket"
ALARMS = {"ExposedObjectsAlarm", "NewExposureAlarm", "UnauditedObjectsAlarm", "FunctionErrorsAlarm", "StateMachineFailedAlarm"}
# The application log levels offered: an INFO line (the metrics line) still reaches the logs under
# each, and none is TRACE, at which lambda_runtime logs every raw event.
LEVELS_OFFERED = {"DEBUG", "INFO"}
FUNCTIONS = {"SequentialFunction": "sequential", "SpawnBlockingFunction": "spawn-blocking", "JoinAllFunction": "join-all"}
STATE_MACHINE = "AuditStateMachine"
STATE_MACHINE_ACTIONS = {
    # The parts files, under parts/ only.
    "s3:GetObject",
    "lambda:InvokeFunction",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "states:StartExecution",
    "states:DescribeExecution",
    "states:StopExecution",
}
RESULTS_WRITES = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
NUMBERS = {"Parts", "MaxConcurrency", "ToleratedFailurePercentage", "PartsPerBucket"}
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


def role_policies(resources):
    """(role id, role, policy name, statement) of every role's inline policies and of the
    AWS::IAM::RolePolicy resources attached to a role of the template."""
    for name, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy, statement in statements(resource):
                yield name, resource, policy, statement
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::RolePolicy":
            continue
        properties = resource["Properties"]
        role_id = properties.get("RoleName", {}).get("Ref")
        role = resources.get(role_id)
        if role is None:
            continue
        for statement in as_list(properties["PolicyDocument"]["Statement"]):
            yield role_id, role, properties["PolicyName"], statement


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
    example = {name: "1" if name in NUMBERS else f"example-{name}"
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
    states = definition["States"]
    maps = [(name, state) for name, state in states.items() if state["Type"] == "Map"]
    if len(maps) != 1:
        yield f"{path.name}: expected one Map state, found {len(maps)}"
        return
    name, state = maps[0]
    worker = "example-WorkerFunctionArn"

    def invokes_worker(task):
        return task.get("Type") == "Task" and task.get("Parameters", {}).get("FunctionName") == worker

    # The plan: join-all cuts the bucket into parts, into a folder of the results bucket.
    plan = next((task for task in states.values() if invokes_worker(task) and "plan" in task["Parameters"].get("Payload", {})), {})
    plan_payload = plan.get("Parameters", {}).get("Payload", {}).get("plan", {})
    if plan.get("Next") != name or plan_payload.get("bucket") != "example-BucketName" or \
            plan_payload.get("prefix") != "example-ObjectPrefix" or plan_payload.get("inventory") != "example-InventorySource" or \
            "example-ResultsBucketName/parts/" not in plan_payload.get("folder.$", "") or \
            plan_payload.get("scope") != "example-AuditScope" or plan_payload.get("role_name") != "example-MemberRoleName" or \
            plan_payload.get("parts_per_bucket.$") != "$.settings.parts_per_bucket" or \
            plan_payload.get("max_concurrency.$") != "$.settings.max_concurrency":
        yield f"{path.name}: no plan step handing join-all the bucket, prefix, inventory, scope, member role, parts per bucket, the Map's concurrency and a parts/ folder of the results bucket before {name}"
    reader = state.get("ItemReader", {})
    expectations = {
        "ItemReader.Resource": (reader.get("Resource"), "arn:aws:states:::s3:getObject"),
        "ItemReader.ReaderConfig": (reader.get("ReaderConfig"), {"InputType": "JSON"}),
        "ItemReader.Parameters": (reader.get("Parameters"), {"Bucket.$": "$.run.pass.items.Bucket",
                                                             "Key.$": "$.run.pass.items.Key"}),
        "ItemProcessor.ProcessorConfig.Mode": (state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode"),
                                               "DISTRIBUTED"),
        # A part runs until the function's deadline: an EXPRESS child (5 minutes at most) could
        # time out under a 300 s invocation and its retries.
        "ItemProcessor.ProcessorConfig.ExecutionType": (
            state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("ExecutionType"), "STANDARD"),
        "ResultWriter.Resource": (state.get("ResultWriter", {}).get("Resource"), "arn:aws:states:::s3:putObject"),
        "ResultWriter.Parameters.Bucket": (state.get("ResultWriter", {}).get("Parameters", {}).get("Bucket"),
                                           "example-ResultsBucketName"),
    }
    for field, (actual, expected) in expectations.items():
        if actual != expected:
            yield f"{path.name}: {name}.{field} is {actual!r}, expected {expected!r}"
    # Each part is built below 256 KiB (acl_audit::parts) and handed on whole: neither batched
    # with others nor reshaped.
    for field in ["ItemBatcher", "ItemSelector"]:
        if field in state:
            yield f"{path.name}: {name}.{field} is set: a part is a worker's whole event"
    if not {"ToleratedFailurePercentage", "ToleratedFailurePercentagePath"} & set(state):
        yield f"{path.name}: {name} sets no tolerated failure threshold"
    workers = [task for task in state.get("ItemProcessor", {}).get("States", {}).values() if task["Type"] == "Task"]
    if [(task.get("Parameters", {}).get("FunctionName"), task.get("Parameters", {}).get("Payload.$"))
            for task in workers] != [(worker, "$")]:
        yield f"{path.name}: the worker is not one Task invoking WorkerFunctionArn with the part as its event"
    # Collect: the pass to join-all, then the Map again while parts are left.
    collect = states.get(state.get("Next", ""), {})
    collect_payload = collect.get("Parameters", {}).get("Payload", {}).get("collect", {})
    if not invokes_worker(collect) or collect_payload != {"pass.$": "$.run.pass"}:
        yield f"{path.name}: {name} is not followed by a collect step handing join-all the pass"
    choice = states.get(collect.get("Next", ""), {})
    loops = [rule for rule in choice.get("Choices", []) if rule.get("Next") == name
             and rule.get("Variable") == "$.run.pass.count" and rule.get("NumericGreaterThan") == 0]
    if choice.get("Type") != "Choice" or not loops:
        yield f"{path.name}: the collect step is not followed by a Choice running {name} again while parts are left"
    # The last step: join-all given the last pass, whose folder holds every pass, to add them up:
    # one bucket's run (scope "bucket") and a sweep's, each with its own ResultSelector.
    bucket_rules = [rule.get("Next") for rule in choice.get("Choices", [])
                    if rule.get("Variable") == "$.run.pass.scope" and rule.get("StringEquals") == "bucket"]
    for last in [*bucket_rules[:1], choice.get("Default", "")]:
        after = states.get(last, {})
        payload = after.get("Parameters", {}).get("Payload", {})
        if not invokes_worker(after) or payload != {"add_up": {"pass.$": "$.run.pass"}} or not after.get("End"):
            yield f"{path.name}: the run does not end with a Task handing join-all the last pass to add up ({last or 'no Default'})"
    if len(bucket_rules) != 1 or bucket_rules[0] == choice.get("Default"):
        yield f"{path.name}: the Choice does not send one bucket's run and a sweep's to their own last steps"
    schedules = [event for event in properties.get("Events", {}).values() if event.get("Type") == "ScheduleV2"]
    if [event.get("Properties", {}).get("State") for event in schedules] != [{"Ref": "ScheduleState"}]:
        yield f"{STATE_MACHINE}: expected one ScheduleV2 event whose State is the ScheduleState parameter"
    worker_arn = substitutions.get("WorkerFunctionArn")
    if worker_arn != {"Fn::GetAtt": ["JoinAllFunction", "Arn"]}:
        yield f"{STATE_MACHINE}: WorkerFunctionArn is {worker_arn!r}, expected join-all's ARN"


def findings(source, transformed):
    resources = transformed["Resources"]
    for name, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for managed in resource["Properties"].get("ManagedPolicyArns", []):
                yield f"{name}: managed policy {managed} (its resources and actions are not ours to check)"
    for name, resource, policy, statement in role_policies(resources):
        actions = as_list(statement["Action"])
        for target in as_list(statement.get("Resource", [])):
            if target == "*" and not set(actions) <= NO_RESOURCE_TYPE:
                yield f'{name}/{policy}: Resource "*"'
        for action in set(actions) & NO_RESOURCE_TYPE:
            if as_list(statement.get("Resource", [])) != ["*"]:
                yield f"{name}/{policy}: {action} has no resource type: its Resource is \"*\""
        if assumed_by(resource, "lambda.amazonaws.com") and policy in SWEEP_POLICIES:
            wanted = SWEEP_POLICIES[policy]
            for action in actions:
                for target in as_list(statement.get("Resource", [])):
                    if wanted.get(action) != resource_text(target):
                        yield f"{name}/{policy}: {action} on {resource_text(target)} beyond the sweep's {wanted.get(action)}"
            continue
        if assumed_by(resource, "lambda.amazonaws.com") and policy == SECURITY_HUB_POLICY:
            for action in actions:
                for target in as_list(statement.get("Resource", [])):
                    if resource_text(target) != SECURITY_HUB_IMPORT.get(action):
                        yield f"{name}/{policy}: {action} on {resource_text(target)} beyond BatchImportFindings on the default product"
            continue
        if assumed_by(resource, "lambda.amazonaws.com"):
            own_reads = {MAP_RUN_POLICY: MAP_RUN_READS, INVENTORY_POLICY: set(INVENTORY_ACTIONS),
                         SUPPRESSIONS_POLICY: {"s3:GetObject"}}
            if policy == SUPPRESSIONS_POLICY:
                for target in as_list(statement["Resource"]):
                    if target != SUPPRESSIONS_READ:
                        yield f"{name}/{policy}: reads beyond the suppression file: {json.dumps(target)}"
            allowed = FUNCTION_ACTIONS | own_reads.get(policy, RESUME_TOKENS)
            for action in actions:
                if action not in allowed:
                    yield f"{name}/{policy}: action {action} beyond {sorted(allowed)}"
            if policy == INVENTORY_POLICY:
                for action in actions:
                    for target in as_list(statement["Resource"]):
                        if resource_text(target) != INVENTORY_ACTIONS.get(action):
                            yield f"{name}/{policy}: reads beyond the inventory bucket: {action} on {resource_text(target)}"
                    listed = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
                    if action == "s3:ListBucket" and resource_text(listed or "") != "${InventoryPrefix}*":
                        yield f"{name}/{policy}: lists beyond InventoryPrefix (no s3:prefix condition)"
            if "s3:DeleteObject" in actions and policy not in own_reads:
                for target in as_list(statement["Resource"]):
                    if not resource_text(target).endswith(RESUME_PREFIX):
                        yield f"{name}/{policy}: removes objects outside the resume tokens: {resource_text(target)}"
            if "s3:GetObject" in actions and policy not in own_reads:
                for target in as_list(statement["Resource"]):
                    if not resource_text(target).endswith(FINDINGS_READ_PREFIX):
                        yield f"{name}/{policy}: reads objects outside the findings prefix: {resource_text(target)}"
            if MAP_RUN_READS & set(actions) and policy == MAP_RUN_POLICY:
                for target in as_list(statement["Resource"]):
                    if not resource_text(target).endswith(MAP_RUN_READ_PREFIXES):
                        yield f"{name}/{policy}: reads objects outside the parts folder: {resource_text(target)}"
            if (BUCKET_SETTINGS_READS | BUCKET_LISTINGS) & set(actions) and policy != INVENTORY_POLICY:
                for target in as_list(statement["Resource"]):
                    if resource_text(target) != "arn:${AWS::Partition}:s3:::${BucketName}":
                        yield f"{name}/{policy}: bucket read beyond the audited bucket (settings, listings): {resource_text(target)}"
            if OBJECT_ACL_READS & set(actions):
                for target in as_list(statement["Resource"]):
                    if resource_text(target) != "arn:${AWS::Partition}:s3:::${BucketName}/*":
                        yield f"{name}/{policy}: object ACLs read beyond the audited bucket: {resource_text(target)}"
            if FINDINGS_WRITES & set(actions):
                # The state machine's steps write the parts files, in their own policy only.
                parts = policy == MAP_RUN_POLICY and set(actions) <= PARTS_WRITES
                allowed, where = (PARTS_PREFIX, "parts/") if parts else ("/${FindingsPrefix}*", "the findings prefix")
                for target in as_list(statement["Resource"]):
                    if not resource_text(target).endswith(allowed):
                        yield f"{name}/{policy}: writes outside {where}: {resource_text(target)}"
        if assumed_by(resource, "states.amazonaws.com"):
            for action in actions:
                if action not in STATE_MACHINE_ACTIONS:
                    yield f"{name}/{policy}: action {action} beyond {sorted(STATE_MACHINE_ACTIONS)}"
            if RESULTS_WRITES & set(actions):
                for target in as_list(statement["Resource"]):
                    if not resource_text(target).endswith("/results/*"):
                        yield f"{name}/{policy}: writes outside results/: {resource_text(target)}"
            if "s3:GetObject" in actions:
                for target in as_list(statement["Resource"]):
                    if not resource_text(target).endswith(PARTS_PREFIX):
                        yield f"{name}/{policy}: reads objects outside parts/: {resource_text(target)}"
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


def emitted_metrics():
    """The metric names the functions' metrics line gives each bucket (metrics.rs)."""
    text = (ROOT / "crates/acl-audit-lambda/src/metrics.rs").read_text()
    block = text[text.index("pub const BUCKET_METRICS"):]
    block = block[: block.index("];")]
    return set(re.findall(r'\("([A-Za-z]+)", "', block))


def alarm_metrics(alarm):
    """(namespace, metric name, dimension names) of every metric an alarm reads."""
    properties = alarm["Properties"]
    if "MetricName" in properties:
        yield properties.get("Namespace"), properties["MetricName"], [d["Name"] for d in properties.get("Dimensions", [])]
    for query in properties.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            yield metric.get("Namespace"), metric["MetricName"], [d["Name"] for d in metric.get("Dimensions", [])]


def object_events_findings(source):
    """S3's one-object events: join-all's rule, off unless the parameter turns it on, for the
    audited bucket's two event types only."""
    parameter = source["Parameters"].get("ObjectEventsState", {})
    if parameter.get("Default") != "DISABLED":
        yield f"ObjectEventsState: default {parameter.get('Default')!r}, expected DISABLED"
    function = source["Resources"].get("JoinAllFunction", {})
    rule = function.get("Properties", {}).get("Events", {}).get("ObjectEvents")
    if rule is None or rule.get("Type") != "EventBridgeRule":
        yield "JoinAllFunction: no EventBridgeRule event ObjectEvents"
        return
    properties = rule["Properties"]
    if properties.get("State") != {"Ref": "ObjectEventsState"}:
        yield f"JoinAllFunction/ObjectEvents: State {properties.get('State')}, expected !Ref ObjectEventsState"
    pattern = properties.get("Pattern", {})
    if pattern.get("source") != ["aws.s3"] or sorted(pattern.get("detail-type", [])) != ["Object ACL Updated", "Object Created"]:
        yield f"JoinAllFunction/ObjectEvents: pattern {pattern} is not S3's Object Created and Object ACL Updated"
    if pattern.get("detail", {}).get("bucket", {}).get("name") != [{"Ref": "BucketName"}]:
        yield "JoinAllFunction/ObjectEvents: pattern is not limited to the audited bucket"


def delivery_findings(source, transformed):
    """The findings bucket, the destinations, the alarms and the log level."""
    resources = source["Resources"]
    bucket = resources.get(FINDINGS_BUCKET)
    if bucket is None:
        yield f"{FINDINGS_BUCKET}: missing"
    else:
        properties = bucket["Properties"]
        block = properties.get("PublicAccessBlockConfiguration", {})
        if sorted(block) != ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] or not all(
            value is True for value in block.values()
        ):
            yield f"{FINDINGS_BUCKET}: public access is not blocked in full: {block}"
        rules = properties.get("OwnershipControls", {}).get("Rules", [])
        if [rule.get("ObjectOwnership") for rule in rules] != ["BucketOwnerEnforced"]:
            yield f"{FINDINGS_BUCKET}: ACLs are not disabled (BucketOwnerEnforced)"
        if not properties.get("BucketEncryption"):
            yield f"{FINDINGS_BUCKET}: no default encryption"
        if not properties.get("LifecycleConfiguration", {}).get("Rules"):
            yield f"{FINDINGS_BUCKET}: no lifecycle rule"
    invoke_configs = [r for r in transformed["Resources"].values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    for logical_id in FUNCTIONS:
        configs = [r for r in invoke_configs if r["Properties"].get("FunctionName") == {"Ref": logical_id}]
        if len(configs) != 1:
            yield f"{logical_id}: expected one EventInvokeConfig, found {len(configs)}"
            continue
        config = configs[0]["Properties"]
        destinations = config.get("DestinationConfig", {})
        for outcome in ["OnSuccess", "OnFailure"]:
            if not destinations.get(outcome, {}).get("Destination"):
                yield f"{logical_id}: no {outcome} destination"
        if "MaximumRetryAttempts" not in config:
            yield f"{logical_id}: the retry count is left to Lambda's default"
    emitted = emitted_metrics()
    for alarm_id in sorted(ALARMS):
        alarm = resources.get(alarm_id)
        if alarm is None or alarm["Type"] != "AWS::CloudWatch::Alarm":
            yield f"{alarm_id}: missing"
            continue
        if not alarm["Properties"].get("AlarmActions"):
            yield f"{alarm_id}: notifies no one"
        for namespace, metric, dimensions in alarm_metrics(alarm):
            if namespace == "AclAudit" and (metric not in emitted or dimensions != ["Bucket"]):
                yield f"{alarm_id}: reads AclAudit {metric} by {dimensions}, which the metrics line does not emit"
            if namespace == "AWS/Lambda" and (metric != "Errors" or dimensions != ["FunctionName"]):
                yield f"{alarm_id}: reads AWS/Lambda {metric} by {dimensions}, expected Errors by FunctionName"
            if namespace == "AWS/States" and (metric != "ExecutionsFailed" or dimensions != ["StateMachineArn"]):
                yield f"{alarm_id}: reads AWS/States {metric} by {dimensions}, expected ExecutionsFailed by StateMachineArn"
    offered = set(source["Parameters"]["LogLevel"].get("AllowedValues", []))
    if not offered <= LEVELS_OFFERED:
        yield f"LogLevel: {sorted(offered - LEVELS_OFFERED)} would drop the INFO metrics line or log raw events"
    bucket = source["Resources"].get(FINDINGS_BUCKET, {}).get("Properties", {})
    if bucket.get("VersioningConfiguration", {}).get("Status") != "Enabled":
        yield f"{FINDINGS_BUCKET}: not versioned, so a run could overwrite another's files unnoticed"
    rules = bucket.get("LifecycleConfiguration", {}).get("Rules", [])
    if not any("NoncurrentVersionExpiration" in rule for rule in rules):
        yield f"{FINDINGS_BUCKET}: no NoncurrentVersionExpiration, so overwritten versions are kept forever"


# The member role (deploy/member-role.yaml): exactly what the sweep reads in its own account,
# each on its resource, and the account's Block Public Access (no resource type: "*").
MEMBER_ROLE_ACTIONS = {
    **{action: json.loads(target) if target.startswith('"') else target
       for action, target in SWEEP_POLICIES["sweep-account"].items()},
    "s3:GetAccountPublicAccessBlock": "*",
}


def member_role_findings(source):
    """The member role grants exactly MEMBER_ROLE_ACTIONS and trusts only the auditing role from
    inside the organization."""
    role = source.get("Resources", {}).get("MemberRole", {}).get("Properties", {})
    granted = {}
    for policy in role.get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            if statement.get("Effect") != "Allow":
                continue
            for action in as_list(statement["Action"]):
                for target in as_list(statement["Resource"]):
                    text = target if target == "*" else resource_text(target)
                    granted.setdefault(action, set()).add(text)
    for action, resources in sorted(granted.items()):
        wanted = MEMBER_ROLE_ACTIONS.get(action)
        if wanted is None:
            yield f"MemberRole: action {action} beyond the sweep's reads"
        elif resources != {wanted}:
            yield f"MemberRole: {action} on {sorted(resources)}, expected {wanted}"
    for action in sorted(set(MEMBER_ROLE_ACTIONS) - set(granted)):
        yield f"MemberRole: {action} missing: the sweep needs it"
    trust = json.dumps(role.get("AssumeRolePolicyDocument", {}))
    if '"AWS": {"Ref": "AuditingRoleArn"}' not in trust or "aws:PrincipalOrgID" not in trust:
        yield "MemberRole: must trust only AuditingRoleArn, with an aws:PrincipalOrgID condition"


def main(path):
    member_path = ROOT / "deploy" / "member-role.yaml"
    member, member_errors = decode(str(member_path))
    member_problems = [str(error) for error in member_errors] or list(member_role_findings(member))
    for problem in member_problems:
        print(f"{member_path}: {problem}")
    path = pathlib.Path(path)
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
    problems = (
        list(findings(source, transformed))
        + list(definition_findings(source))
        + list(delivery_findings(source, transformed))
        + list(object_events_findings(source))
    )
    for problem in problems:
        print(f"{path}: {problem}")
    if not problems:
        print(f"{path}: least privilege and function packaging OK")
    if not member_problems:
        print(f"{member_path}: the member role grants exactly the sweep's reads")
    return 1 if problems or member_problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ROOT / "template.yaml"))
