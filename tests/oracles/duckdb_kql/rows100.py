#!/usr/bin/env python3
"""Deterministic synthetic AWSCloudTrail rows for selftest.sh's scale and cross-check step.

    python3 rows100.py FIXTURE_JSON [N] > rows.json      (a JSON list of N rows, default 100)

Every row draws each column from a small CloudTrail-like vocabulary (event names and
sources the rulecast rules watch, JSON request/response parameters with the keys the
rules read, user agents, IPs, nulls and empty strings) with a fixed seed, so the rules
see both matching and non-matching rows. The fixture's own rows come first.
"""
import json
import random
import sys

EVENTS = [
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"), ("ec2.amazonaws.com", "RevokeSecurityGroupEgress"),
    ("ec2.amazonaws.com", "CreateSecurityGroup"), ("ec2.amazonaws.com", "CreateNetworkAclEntry"),
    ("cloudtrail.amazonaws.com", "StopLogging"), ("cloudtrail.amazonaws.com", "DeleteTrail"),
    ("cloudtrail.amazonaws.com", "UpdateTrail"), ("signin.amazonaws.com", "ConsoleLogin"),
    ("guardduty.amazonaws.com", "DeleteDetector"), ("guardduty.amazonaws.com", "UpdateDetector"),
    ("iam.amazonaws.com", "CreateAccessKey"), ("iam.amazonaws.com", "UpdateAccountPasswordPolicy"),
    ("iam.amazonaws.com", "DeleteAccountPasswordPolicy"), ("kms.amazonaws.com", "ScheduleKeyDeletion"),
    ("s3.amazonaws.com", "PutBucketAcl"), ("s3.amazonaws.com", "PutBucketPublicAccessBlock"),
    ("sts.amazonaws.com", "AssumeRole"), ("sts.amazonaws.com", "GetSessionToken"),
    ("s3.amazonaws.com", "GetObject"),
]
REQUEST = [
    "", "not json", "{}", "null", "[1,2]",
    '{"enable":false,"detectorId":"d-1"}', '{"enable":"false"}', '{"enable":true}',
    '{"durationSeconds":43200}', '{"durationSeconds":"50000"}', '{"durationSeconds":3600}',
    '{"userName":"bob"}', '{"userName":""}',
    '{"ruleAction":"allow","egress":false,"aclProtocol":"-1","cidrBlock":"0.0.0.0/0","networkAclId":"acl-1"}',
    '{"minimumPasswordLength":8,"passwordReusePrevention":24}', '{"minimumPasswordLength":16}',
    '{"bucketName":"b-public-assets","x-amz-acl":["public-read"]}', '{"bucketName":"data","x-amz-acl":"public-read-write"}',
    '{"bucketName":"data","PublicAccessBlockConfiguration":{"BlockPublicAcls":false,"BlockPublicPolicy":true}}',
    '{"name":"arn:aws:cloudtrail:us-east-1:1:trail/sandbox-1","keyId":"k-1"}',
]
RESPONSE = ["", '{"ConsoleLogin":"Success"}', '{"ConsoleLogin":"Failure"}',
            '{"accessKey":{"accessKeyId":"AKIA1"}}', "null"]
ADDITIONAL = ["", '{"MFAUsed":"No","LoginTo":"https://console"}', '{"MFAUsed":"Yes"}',
              '{"MFAUsed":"No","SamlProviderArn":"arn:aws:iam::1:saml-provider/x"}']
AGENTS = ["", "console.amazonaws.com", "aws-cli/2.15 Python/3.11 Linux/6.1 kali",
          "APN/1.0 HashiCorp/1.0 Terraform/1.5.7", "Boto3/1.28 HashiCorp/1.10 Terraform/1.0",
          "pacu/1.5", "stratus-red-team_1", "Mozilla/5.0 (pacu)"]
IPS = ["10.1.2.3", "172.20.0.9", "192.168.1.1", "198.51.100.20", "203.0.113.7",
       "2001:db8::1", "2001:db9::1", "AWS Internal", "ec2.amazonaws.com", ""]
TYPES = ["IAMUser", "AssumedRole", "Root", "AWSService", "FederatedUser", ""]
ARNS = ["", "arn:aws:iam::111122223333:user/alice@example.com", "arn:aws:iam::111122223333:root",
        "arn:aws:sts::111122223333:assumed-role/IAMKeyRotation/s", "arn:aws:iam::111122223333:user/svc-key-rotator",
        "arn:aws:sts::111122223333:assumed-role/ContinousDeployment/x"]
USERS = ["", "alice", "AWSReservedSSO_Admin_1", "OrgCloudTrailAdmin"]
ACCOUNTS = ["", "112233445566", "11111111111111", "999999999999"]
#: Coherent (EventSource, EventName, RequestParameters, ResponseElements) sets that some
#: rulecast rules need together; a third of the rows start from one of them.
SCENARIOS = [
    ("sts.amazonaws.com", "AssumeRole", '{"durationSeconds":43200}', ""),
    ("sts.amazonaws.com", "GetSessionToken", '{"durationSeconds":"43201"}', ""),
    ("s3.amazonaws.com", "PutBucketAcl", '{"bucketName":"data","x-amz-acl":["public-read"]}', ""),
    ("s3.amazonaws.com", "PutBucketPublicAccessBlock",
     '{"bucketName":"data","PublicAccessBlockConfiguration":{"BlockPublicAcls":false}}', ""),
    ("iam.amazonaws.com", "CreateAccessKey", '{"userName":"bob"}', '{"accessKey":{"accessKeyId":"AKIA1"}}'),
    ("iam.amazonaws.com", "CreateAccessKey", "", '{"accessKey":{"accessKeyId":"AKIA2"}}'),
    ("signin.amazonaws.com", "ConsoleLogin", "", '{"ConsoleLogin":"Success"}'),
    ("guardduty.amazonaws.com", "UpdateDetector", '{"enable":false,"detectorId":"d-1"}', ""),
    ("ec2.amazonaws.com", "ReplaceNetworkAclEntry",
     '{"ruleAction":"allow","egress":false,"aclProtocol":"-1","ipv6CidrBlock":"::/0"}', ""),
]
TIMES = [None, "2024-05-01T00:00:00Z", "2024-05-01T12:34:56.1234567Z", "2024-06-30T23:59:59+02:00"]


def make(fixture_rows, schema, n, seed=20240501):
    rng = random.Random(seed)
    rows = [dict(r) for r in fixture_rows][:n]
    while len(rows) < n:
        source, name = rng.choice(EVENTS)
        row = {}
        for col, ktype in schema:
            if ktype == "string":
                row[col] = ""
            else:
                row[col] = None
        failed = rng.random() < 0.2
        row.update({
            "EventSource": source, "EventName": name,
            "ErrorCode": "AccessDenied" if failed else "",
            "ErrorMessage": "denied" if failed and rng.random() < 0.5 else "",
            "RequestParameters": rng.choice(REQUEST), "ResponseElements": rng.choice(RESPONSE),
            "AdditionalEventData": rng.choice(ADDITIONAL), "UserAgent": rng.choice(AGENTS),
            "SourceIpAddress": rng.choice(IPS), "UserIdentityType": rng.choice(TYPES),
            "UserIdentityArn": rng.choice(ARNS), "UserIdentityUserName": rng.choice(USERS),
            "SessionIssuerUserName": rng.choice(USERS), "RecipientAccountId": rng.choice(ACCOUNTS),
            "UserIdentityInvokedBy": rng.choice(["", "", "cloudformation.amazonaws.com"]),
            "EventTypeName": rng.choice(["AwsApiCall", "AwsConsoleSignIn", "AwsServiceEvent"]),
            "SessionMfaAuthenticated": rng.choice([True, False, None]),
            "ManagementEvent": rng.choice([True, None]), "ReadOnly": rng.choice([True, False, None]),
            "TimeGenerated": rng.choice(TIMES), "SessionCreationDate": rng.choice(TIMES),
        })
        if rng.random() < 0.33:
            source, name, request, response = rng.choice(SCENARIOS)
            row.update({"EventSource": source, "EventName": name,
                        "RequestParameters": request, "ResponseElements": response})
        rows.append({k: v for k, v in row.items() if k in dict(schema)})
    return rows


if __name__ == "__main__":
    fx = json.load(open(sys.argv[1]))
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    json.dump(make(fx["rows"], fx["schema"], n), sys.stdout)
