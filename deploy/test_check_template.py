"""The template checker catches what it is for: run with `python -m unittest discover deploy`."""

import contextlib
import io
import json
import pathlib
import sys
import tempfile
import unittest

DEPLOY = pathlib.Path(__file__).resolve().parent
TEMPLATE = (DEPLOY.parent / "template.yaml").read_text()


sys.path.insert(0, str(DEPLOY))
import check_template  # noqa: E402 (beside this file, not a package)


def check(template_text):
    """check_template.py's exit code and output for `template_text`, run in this process: a
    process each would import cfn-lint and SAM's translator again, seconds a test."""
    # Beside the real template, so that CodeUri paths resolve the same way.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=DEPLOY.parent, delete=False) as file:
        file.write(template_text)
    path = pathlib.Path(file.name)
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = check_template.main(path)
    finally:
        path.unlink()
    return code, output.getvalue()


class CheckTemplate(unittest.TestCase):
    def assert_finding(self, old, new, finding):
        bad = TEMPLATE.replace(old, new)
        self.assertNotEqual(bad, TEMPLATE, "the mutation must apply")
        code, output = check(bad)
        self.assertEqual(code, 1, output)
        self.assertIn(finding, output)

    def test_the_project_template_passes(self):
        code, output = check(TEMPLATE)
        self.assertEqual(code, 0, output)

    def test_a_wildcard_resource_fails(self):
        self.assert_finding(
            "Resource: !Sub arn:${AWS::Partition}:s3:::${BucketName}/*",
            'Resource: "*"',
            'AuditRole/read-object-acls: Resource "*"',
        )

    def test_an_extra_action_fails(self):
        self.assert_finding(
            "                  - s3:GetObjectVersionAcl\n",
            "                  - s3:GetObjectVersionAcl\n                  - s3:PutObjectAcl\n",
            "action s3:PutObjectAcl beyond",
        )

    def test_object_reads_beyond_the_findings_prefix_fail(self):
        self.assert_finding(
            "                  - s3:GetObjectVersionAcl\n",
            "                  - s3:GetObjectVersionAcl\n                  - s3:GetObject\n",
            "reads objects outside the findings prefix",
        )

    def test_versions_read_beyond_the_audited_bucket_fail(self):
        self.assert_finding(
            "                  - s3:ListBucketVersions\n                Resource: !Sub arn:${AWS::Partition}:s3:::${BucketName}\n",
            "                  - s3:ListBucketVersions\n                Resource: !Sub arn:${AWS::Partition}:s3:::*\n",
            "bucket read beyond the audited bucket",
        )
        self.assert_finding(
            "                  - s3:GetObjectVersionAcl\n                Resource: !Sub arn:${AWS::Partition}:s3:::${BucketName}/*\n",
            "                  - s3:GetObjectVersionAcl\n                Resource: !Sub arn:${AWS::Partition}:s3:::*/*\n",
            "object ACLs read beyond the audited bucket",
        )

    def test_a_function_built_from_elsewhere_fails(self):
        self.assert_finding(
            "CodeUri: functions/join-all",
            "CodeUri: functions/join_all",
            "JoinAllFunction: CodeUri 'functions/join_all'",
        )

    def test_a_managed_policy_fails(self):
        self.assert_finding(
            "      Policies:\n        - PolicyName: read-object-acls",
            "      ManagedPolicyArns:\n        - arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\n"
            "      Policies:\n        - PolicyName: read-object-acls",
            "managed policy arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        )

    def test_a_state_machine_listing_the_bucket_fails(self):
        self.assert_finding(
            "                Action: lambda:InvokeFunction",
            "                Action: [lambda:InvokeFunction, s3:ListBucket]",
            "AuditStateMachineRole/run-distributed-audit: action s3:ListBucket beyond",
        )

    def test_a_state_machine_reading_objects_beyond_the_parts_fails(self):
        self.assert_finding(
            "                Action: s3:GetObject\n                Resource: !Sub ${ResultsBucket.Arn}/parts/*\n",
            "                Action: s3:GetObject\n                Resource: !Sub ${ResultsBucket.Arn}/*\n",
            "reads objects outside parts/",
        )

    def test_parts_written_beyond_their_prefix_fail(self):
        self.assert_finding(
            "              - s3:AbortMultipartUpload\n            Resource: !Sub ${ResultsBucket.Arn}/parts/*\n",
            "              - s3:AbortMultipartUpload\n            Resource: !Sub ${ResultsBucket.Arn}/*\n",
            "run-parts: writes outside parts/",
        )

    def test_results_written_outside_their_prefix_fail(self):
        self.assert_finding(
            "Resource: !Sub ${ResultsBucket.Arn}/results/*",
            "Resource: !Sub ${ResultsBucket.Arn}/*",
            "writes outside results/",
        )

    def assert_definition_finding(self, mutate, finding, state="AuditParts"):
        """The template pointed at a copy of the definition whose `state` `mutate` changed."""
        definition = json.loads((DEPLOY.parent / "statemachine/audit-bucket.asl.json").read_text())
        mutate(definition["States"][state])
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(definition, file)
        try:
            self.assert_finding(
                "DefinitionUri: statemachine/audit-bucket.asl.json", f"DefinitionUri: {file.name}", finding
            )
        finally:
            pathlib.Path(file.name).unlink()

    def test_a_definition_without_a_result_writer_fails(self):
        self.assert_definition_finding(
            lambda state: state.pop("ResultWriter"), "AuditParts.ResultWriter.Resource is None"
        )

    def test_a_definition_listing_the_bucket_itself_fails(self):
        self.assert_definition_finding(
            lambda state: state["ItemReader"].update(Resource="arn:aws:states:::s3:listObjectsV2"),
            "AuditParts.ItemReader.Resource is 'arn:aws:states:::s3:listObjectsV2'",
        )

    def test_express_children_that_a_part_can_outlast_fail(self):
        self.assert_definition_finding(
            lambda state: state["ItemProcessor"]["ProcessorConfig"].update(ExecutionType="EXPRESS"),
            "ExecutionType is 'EXPRESS'",
        )

    def test_a_definition_batching_parts_fails(self):
        self.assert_definition_finding(
            lambda state: state.update(ItemBatcher={"MaxItemsPerBatch": 10}),
            "AuditParts.ItemBatcher is set",
        )

    def test_a_definition_without_a_plan_fails(self):
        self.assert_definition_finding(
            lambda state: state["Parameters"]["Payload"]["plan"].pop("inventory"), "no plan step", state="Plan"
        )

    def test_a_definition_running_one_pass_only_fails(self):
        self.assert_definition_finding(
            lambda state: state["Choices"][0].update(Next="AddUp"), "running AuditParts again", state="PartsLeft"
        )

    def test_a_state_machine_schedule_on_by_default_fails(self):
        schedule = (
            "        StateMachineSchedule:\n          Type: ScheduleV2\n          Properties:\n"
            "            ScheduleExpression: !Ref ScheduleExpression\n            State: "
        )
        self.assert_finding(
            schedule + "!Ref ScheduleState\n", schedule + "ENABLED\n", "expected one ScheduleV2 event"
        )

    def test_a_definition_breaking_the_states_language_fails(self):
        self.assert_definition_finding(lambda state: state.update(Type="Mapp"), "E3601")

    def test_a_placeholder_without_a_substitution_fails(self):
        self.assert_finding(
            "        ResultsPrefix: results\n",
            "",
            "placeholders",
        )

    def test_findings_writes_outside_the_prefix_fail(self):
        self.assert_finding(
            "arn:${AWS::Partition}:s3:::${Bucket}/${FindingsPrefix}*",
            "arn:${AWS::Partition}:s3:::${Bucket}/*",
            "writes outside the findings prefix",
        )

    def test_a_findings_bucket_open_to_acls_fails(self):
        self.assert_finding(
            "      OwnershipControls:\n        Rules:\n          - ObjectOwnership: BucketOwnerEnforced\n"
            "      BucketEncryption:\n        ServerSideEncryptionConfiguration:\n"
            "          - ServerSideEncryptionByDefault:\n              SSEAlgorithm: AES256\n"
            "      LifecycleConfiguration:\n        Rules:\n          - Id: expire-findings",
            "      OwnershipControls:\n        Rules:\n          - ObjectOwnership: ObjectWriter\n"
            "      BucketEncryption:\n        ServerSideEncryptionConfiguration:\n"
            "          - ServerSideEncryptionByDefault:\n              SSEAlgorithm: AES256\n"
            "      LifecycleConfiguration:\n        Rules:\n          - Id: expire-findings",
            "FindingsBucket: ACLs are not disabled",
        )

    def test_bucket_settings_read_beyond_the_bucket_fail(self):
        self.assert_finding(
            "                  - s3:GetBucketVersioning\n                Resource: !Sub arn:${AWS::Partition}:s3:::${BucketName}\n",
            "                  - s3:GetBucketVersioning\n                Resource: !Sub arn:${AWS::Partition}:s3:::*\n",
            "bucket read beyond the audited bucket",
        )

    def test_a_wildcard_beside_an_action_with_a_resource_type_fails(self):
        self.assert_finding(
            "                Action: s3:GetAccountPublicAccessBlock\n",
            "                Action: [s3:GetAccountPublicAccessBlock, s3:GetObjectAcl]\n",
            'Resource "*"',
        )

    def test_object_events_on_by_default_or_for_every_bucket_fail(self):
        self.assert_finding("    Default: DISABLED\n", "    Default: ENABLED\n", "expected DISABLED")
        self.assert_finding(
            "                  name: [!Ref BucketName]\n",
            "                  prefix: [\"\"]\n",
            "not limited to the audited bucket",
        )

    def test_an_alarm_on_a_metric_never_emitted_fails(self):
        self.assert_finding("MetricName: ExposedObjects", "MetricName: ExposedObject", "reads AclAudit ExposedObject")

    def test_security_hub_beyond_the_default_product_fails(self):
        self.assert_finding(
            "product/${AWS::AccountId}/default",
            "product/*",
            "beyond BatchImportFindings on the default product",
        )

    def test_the_new_exposure_alarm_is_required(self):
        self.assert_finding("  NewExposureAlarm:\n", "  NewExposureAlarmGone:\n", "NewExposureAlarm: missing")

    def test_a_token_removal_beyond_the_resume_tokens_fails(self):
        self.assert_finding(
            "                Action: s3:DeleteObject\n                Resource: !Sub\n"
            "                  - arn:${AWS::Partition}:s3:::${Bucket}/${FindingsPrefix}resume/*",
            "                Action: s3:DeleteObject\n                Resource: !Sub\n"
            "                  - arn:${AWS::Partition}:s3:::${Bucket}/${FindingsPrefix}*",
            "removes objects outside the resume tokens",
        )

    def test_a_missing_failure_destination_fails(self):
        self.assert_finding(
            "        OnFailure:\n          Type: SQS\n          Destination: !GetAtt FailedRunsQueue.Arn\n",
            "",
            "no OnFailure destination",
        )

    def test_part_reads_beyond_the_parts_folder_fail(self):
        self.assert_finding(
            "          - Effect: Allow\n            Action: s3:GetObject\n            Resource: !Sub ${ResultsBucket.Arn}/parts/*\n"
            "          - Effect: Allow\n            Action:\n              - s3:PutObject",
            "          - Effect: Allow\n            Action: s3:GetObject\n            Resource: !Sub ${ResultsBucket.Arn}/results/*\n"
            "          - Effect: Allow\n            Action:\n              - s3:PutObject",
            "run-parts: reads objects outside",
        )

    def test_inventory_reads_beyond_the_inventory_bucket_fail(self):
        self.assert_finding(
            "            Resource: !Sub arn:${AWS::Partition}:s3:::${InventoryBucketName}/${InventoryPrefix}*\n",
            "            Resource: !Sub arn:${AWS::Partition}:s3:::${BucketName}/*\n",
            "read-inventory: reads beyond the inventory bucket",
        )

    def test_inventory_reads_beyond_the_inventory_prefix_fail(self):
        self.assert_finding(
            "${InventoryBucketName}/${InventoryPrefix}*\n",
            "${InventoryBucketName}/*\n",
            "read-inventory: reads beyond the inventory bucket",
        )

    def test_inventory_listing_beyond_the_inventory_prefix_fails(self):
        self.assert_finding(
            "                s3:prefix: !Sub ${InventoryPrefix}*\n",
            "                s3:prefix: \"*\"\n",
            "lists beyond InventoryPrefix",
        )

    def test_inventory_listing_beyond_the_inventory_bucket_fails(self):
        self.assert_finding(
            "            Resource: !Sub arn:${AWS::Partition}:s3:::${InventoryBucketName}\n",
            "            Resource: !Sub arn:${AWS::Partition}:s3:::${BucketName}\n",
            "read-inventory: reads beyond the inventory bucket: s3:ListBucket",
        )

    def test_a_definition_that_never_collects_its_parts_fails(self):
        def end_at_the_map(state):
            state.pop("Next")
            state["End"] = True

        self.assert_definition_finding(end_at_the_map, "is not followed by a collect step")

    def test_a_definition_sending_sweeps_to_the_bucket_s_last_step_fails(self):
        def one_last_step(state):
            state["Default"] = "AddUp"

        self.assert_definition_finding(one_last_step, "does not send one bucket's run and a sweep's", state="PartsLeft")

    def test_a_plan_without_the_scope_fails(self):
        self.assert_definition_finding(
            lambda state: state["Parameters"]["Payload"]["plan"].pop("scope"),
            "no plan step handing join-all the bucket, prefix, inventory, scope",
            state="Plan",
        )

    def test_suppressions_read_beyond_their_object_fail(self):
        self.assert_finding(
            "              - Object: !Select [1, !Split [\"s3://\", !Ref SuppressionsUri]]\n",
            "              - Object: \"*\"\n",
            "read-suppressions: reads beyond the suppression file",
        )

    def test_a_definition_adding_up_without_the_pass_fails(self):
        self.assert_definition_finding(
            lambda state: state["Parameters"]["Payload"]["add_up"].pop("pass.$"),
            "does not end with a Task handing join-all the last pass",
            state="AddUp",
        )

    def test_a_function_role_invoking_a_function_fails(self):
        self.assert_finding(
            "              - s3:AbortMultipartUpload\n            Resource: !Sub ${ResultsBucket.Arn}/parts/*\n",
            "              - s3:AbortMultipartUpload\n            Resource: !Sub ${ResultsBucket.Arn}/parts/*\n"
            "          - Effect: Allow\n            Action: lambda:InvokeFunction\n"
            "            Resource: !Sub arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-join-all\n",
            "action lambda:InvokeFunction beyond",
        )

    def test_a_log_level_that_drops_the_metrics_line_fails(self):
        self.assert_finding("AllowedValues: [DEBUG, INFO]", "AllowedValues: [DEBUG, INFO, WARN]", "LogLevel")

    def test_a_log_level_that_logs_raw_events_fails(self):
        self.assert_finding("AllowedValues: [DEBUG, INFO]", "AllowedValues: [TRACE, DEBUG, INFO]", "LogLevel")

    def test_an_unversioned_findings_bucket_fails(self):
        self.assert_finding("Status: Enabled\n      OwnershipControls", "Status: Suspended\n      OwnershipControls", "not versioned")

    def test_overwritten_versions_kept_forever_fail(self):
        self.assert_finding("            NoncurrentVersionExpiration:\n              NoncurrentDays: !Ref FindingsRetentionDays\n", "", "NoncurrentVersionExpiration")


if __name__ == "__main__":
    unittest.main()


class CheckSweepPolicies(unittest.TestCase):
    """The sweep's policies in template.yaml: each action on its one resource."""

    def assert_finding(self, old, new, finding):
        bad = TEMPLATE.replace(old, new)
        self.assertNotEqual(bad, TEMPLATE, "the mutation must apply")
        code, output = check(bad)
        self.assertEqual(code, 1, output)
        self.assertIn(finding, output)

    def test_an_object_read_in_the_sweep_fails(self):
        self.assert_finding(
            "              - s3:GetObjectAcl\n              - s3:GetObjectVersionAcl\n            Resource: !Sub arn:${AWS::Partition}:s3:::*/*\n",
            "              - s3:GetObjectAcl\n              - s3:GetObjectVersionAcl\n              - s3:GetObject\n            Resource: !Sub arn:${AWS::Partition}:s3:::*/*\n",
            "sweep-account: s3:GetObject",
        )

    def test_assuming_any_role_fails(self):
        self.assert_finding(
            "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}",
            "arn:${AWS::Partition}:iam::*:role/*",
            "sweep-organization: sts:AssumeRole",
        )


class CheckMemberRole(unittest.TestCase):
    """The member role's check, on mutations of deploy/member-role.yaml."""

    def findings(self, old, new):
        from cfnlint.decode import decode_str

        text = (DEPLOY / "member-role.yaml").read_text()
        mutated = text.replace(old, new)
        self.assertNotEqual(mutated, text, "the mutation must apply")
        source, errors = decode_str(mutated)
        self.assertEqual(errors, [])
        return list(check_template.member_role_findings(source))

    def test_the_member_role_passes(self):
        from cfnlint.decode import decode

        source, _ = decode(str(DEPLOY / "member-role.yaml"))
        self.assertEqual(list(check_template.member_role_findings(source)), [])

    def test_an_object_read_fails(self):
        found = self.findings("                  - s3:GetObjectAcl\n", "                  - s3:GetObjectAcl\n                  - s3:GetObject\n")
        self.assertIn("MemberRole: action s3:GetObject beyond the sweep's reads", found)

    def test_a_wildcard_resource_on_a_bucket_action_fails(self):
        found = self.findings("                Resource: !Sub arn:${AWS::Partition}:s3:::*\n", '                Resource: "*"\n')
        self.assertTrue(any("s3:GetBucketAcl on ['*']" in f for f in found), found)

    def test_a_trust_without_the_organization_fails(self):
        found = self.findings("aws:PrincipalOrgID", "aws:SourceAccount")
        self.assertTrue(any("PrincipalOrgID" in f for f in found), found)

