"""The template checker catches what it is for: run with `python -m unittest discover deploy`."""

import pathlib
import subprocess
import sys
import tempfile
import unittest

DEPLOY = pathlib.Path(__file__).resolve().parent
TEMPLATE = (DEPLOY.parent / "template.yaml").read_text()


def check(template_text):
    # Beside the real template, so that CodeUri paths resolve the same way.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=DEPLOY.parent, delete=False) as file:
        file.write(template_text)
    path = pathlib.Path(file.name)
    try:
        run = subprocess.run(
            [sys.executable, str(DEPLOY / "check_template.py"), str(path)], capture_output=True, text=True
        )
    finally:
        path.unlink()
    return run.returncode, run.stdout + run.stderr


class CheckTemplate(unittest.TestCase):
    def test_the_project_template_passes(self):
        code, output = check(TEMPLATE)
        self.assertEqual(code, 0, output)

    def test_a_wildcard_resource_fails(self):
        bad = TEMPLATE.replace("Resource: !Sub arn:${AWS::Partition}:s3:::${BucketName}/*", 'Resource: "*"')
        self.assertNotEqual(bad, TEMPLATE)
        code, output = check(bad)
        self.assertEqual(code, 1, output)
        self.assertIn('AuditRole/read-object-acls: Resource "*"', output)

    def test_an_extra_action_fails(self):
        bad = TEMPLATE.replace("Action: s3:GetObjectAcl", "Action: [s3:GetObjectAcl, s3:GetObject]")
        self.assertNotEqual(bad, TEMPLATE)
        code, output = check(bad)
        self.assertEqual(code, 1, output)
        self.assertIn("action s3:GetObject beyond", output)

    def test_a_function_built_from_elsewhere_fails(self):
        bad = TEMPLATE.replace("CodeUri: functions/join-all", "CodeUri: functions/join_all")
        code, output = check(bad)
        self.assertEqual(code, 1, output)
        self.assertIn("JoinAllFunction: CodeUri 'functions/join_all'", output)

    def test_a_managed_policy_fails(self):
        bad = TEMPLATE.replace(
            "      Policies:\n        - PolicyName: read-object-acls",
            "      ManagedPolicyArns:\n        - arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\n"
            "      Policies:\n        - PolicyName: read-object-acls",
        )
        self.assertNotEqual(bad, TEMPLATE)
        code, output = check(bad)
        self.assertEqual(code, 1, output)
        self.assertIn("managed policy arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", output)


if __name__ == "__main__":
    unittest.main()
