"""An organization trail in the management (default) account takes every account's records."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.functional.server import ServerProcess
from tests.functional.trails import (LOG_KEY, aws_cli, chain_closed, counts, local_s3,
                                     read_bucket, searchtrail_cli, wait_for)


def test_member_account_records_go_to_the_organization_trail(tmp_path) -> None:
    server = ServerProcess(tmp_path / "data", args=["--delivery-interval", "1"])
    try:
        server.start()
        assert searchtrail_cli("buckets", "create", "org-logs", "--data-dir",
                               str(server.data_dir)).returncode == 0
        member = json.loads(searchtrail_cli("accounts", "create", "--data-dir",
                                            str(server.data_dir)).stdout)
        member_key = (member["AccessKey"]["AccessKeyId"], member["AccessKey"]["SecretAccessKey"])
        cloudtrail = server.client("cloudtrail")
        trail = cloudtrail.create_trail(Name="org", S3BucketName="org-logs", IsOrganizationTrail=True,
                                        IsMultiRegionTrail=True, EnableLogFileValidation=True)
        cloudtrail.start_logging(Name="org")
        # a member reads the organization trail by its ARN (its root needs no policy for it),
        # but cannot change it
        as_member = server.client("cloudtrail", key=member_key)
        assert as_member.get_trail(Name=trail["TrailARN"])["Trail"]["IsOrganizationTrail"]
        assert as_member.get_trail_status(Name=trail["TrailARN"])["IsLogging"]
        assert as_member.get_event_selectors(TrailName=trail["TrailARN"])["TrailARN"] == \
            trail["TrailARN"]
        with pytest.raises(ClientError) as refused:
            as_member.stop_logging(Name=trail["TrailARN"])
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
        assert cloudtrail.get_trail_status(Name="org")["IsLogging"]
        request_id = server.client("opensearchserverless", region="eu-central-1",
                                   key=member_key).list_collections()["ResponseMetadata"]["RequestId"]

        def member_files():  # type: ignore[no-untyped-def]
            content = read_bucket(local_s3(server), "org-logs")
            return {key: records for key, records in content.records_by_key.items()
                    if LOG_KEY.match(key)["account"] == member["AccountId"]
                    and LOG_KEY.match(key)["region"] == "eu-central-1"}

        files = wait_for(member_files, seconds=30, what="the member account's log file")
        (key, records), = files.items()
        match = LOG_KEY.match(key)
        assert match["org"] and match["org"].startswith("o-")
        assert match["region"] == "eu-central-1"
        assert [r["requestID"] for r in records] == [request_id]
        assert records[0]["recipientAccountId"] == member["AccountId"]

        cloudtrail.stop_logging(Name="org")
        wait_for(lambda: chain_closed(server, "org"), seconds=30, what="final digests")
        common = ("--trail-arn", trail["TrailARN"], "--start-time", "2020-01-01T00:00:00Z",
                  "--region", "eu-central-1")
        ours = searchtrail_cli("trail", "validate", *common, "--account-id", member["AccountId"],
                               "--data-dir", str(server.data_dir))
        assert ours.returncode == 0, ours.stdout + ours.stderr
        assert "1/1 log files valid" in ours.stdout
        # the AWS CLI finds the organization's id through DescribeOrganization
        key_id, secret = server.credentials()
        env = {"AWS_ENDPOINT_URL_CLOUDTRAIL": server.endpoint,
               "AWS_ENDPOINT_URL_ORGANIZATIONS": server.endpoint,
               "AWS_ENDPOINT_URL_S3": server.endpoint + "/_s3", "AWS_ACCESS_KEY_ID": key_id,
               "AWS_SECRET_ACCESS_KEY": secret, "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        aws = aws_cli("cloudtrail", "validate-logs", *common, "--account-id",
                      member["AccountId"], env=env)
        assert aws.returncode == 0, aws.stdout + aws.stderr
        assert counts(aws.stdout) == counts(ours.stdout)
        # and both want to be told whose files to check
        unsaid = searchtrail_cli("trail", "validate", *common, "--data-dir", str(server.data_dir))
        assert unsaid.returncode == 255 and "'--account-id'" in unsaid.stderr
        assert aws_cli("cloudtrail", "validate-logs", *common, env=env).returncode == 255
    finally:
        server.stop()
