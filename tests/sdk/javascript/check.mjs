// The AWS SDK for JavaScript v3 as a user drives it against searchtrail: aoss, IAM, STS
// (root keys, an IAM user's keys, an assumed role's temporary credentials) and CloudTrail.
// Prints one JSON document of what it saw; tests/functional/test_javascript_sdk.py judges it.
// Needs AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the root's).
import {
  BatchGetCollectionCommand, CreateCollectionCommand, CreateSecurityPolicyCommand,
  GetSecurityPolicyCommand, ListCollectionsCommand, ListTagsForResourceCommand,
  OpenSearchServerlessClient, paginateListCollections,
} from "@aws-sdk/client-opensearchserverless";
import {
  CloudTrailClient, DescribeTrailsCommand, paginateLookupEvents,
} from "@aws-sdk/client-cloudtrail";
import {
  CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, IAMClient, PutRolePolicyCommand,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";

const endpoint = process.env.AWS_ENDPOINT_URL;
const region = "us-east-1";
const root = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID,
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
};
// No retries: every answer is the server's first.
const settings = (credentials) => ({ endpoint, region, credentials, maxAttempts: 1 });
const seen = { requestIds: {}, errors: {} };

async function call(label, client, command) {
  const answer = await client.send(command);
  seen.requestIds[label] = answer.$metadata.requestId;
  return answer;
}

async function refusal(label, client, command) {
  try {
    await client.send(command);
    seen.errors[label] = { name: "none: the call succeeded" };
  } catch (error) {
    seen.errors[label] = {
      name: error.name, status: error.$metadata?.httpStatusCode, message: error.message,
      requestId: error.$metadata?.requestId,
    };
  }
}

const aoss = new OpenSearchServerlessClient(settings(root));
const sts = new STSClient(settings(root));
const iam = new IAMClient(settings(root));
const cloudtrail = new CloudTrailClient(settings(root));

const me = await call("GetCallerIdentity", sts, new GetCallerIdentityCommand({}));
seen.account = me.Account;
seen.rootArn = me.Arn;

await call("CreateSecurityPolicy", aoss, new CreateSecurityPolicyCommand({
  name: "js-encryption", type: "encryption",
  policy: JSON.stringify({ Rules: [{ ResourceType: "collection", Resource: ["collection/js-*"] }],
                           AWSOwnedKey: true }),
}));
const created = await call("CreateCollection", aoss, new CreateCollectionCommand({
  name: "js-logs", type: "SEARCH", tags: [{ key: "team", value: "search" }],
  clientToken: "js-logs-token-0001",
}));
seen.collection = {
  id: created.createCollectionDetail.id, arn: created.createCollectionDetail.arn,
  status: created.createCollectionDetail.status,
  createdDateType: typeof created.createCollectionDetail.createdDate,
};
const again = await call("CreateCollection again", aoss, new CreateCollectionCommand({
  name: "js-logs", type: "SEARCH", tags: [{ key: "team", value: "search" }],
  clientToken: "js-logs-token-0001",
}));
seen.sameTokenSameId = again.createCollectionDetail.id === seen.collection.id;
await refusal("CreateCollection taken", aoss, new CreateCollectionCommand({
  name: "js-logs", type: "SEARCH",
}));
await refusal("GetSecurityPolicy missing", aoss, new GetSecurityPolicyCommand({
  name: "no-such-policy", type: "encryption",
}));

const listed = [];
for await (const page of paginateListCollections({ client: aoss, pageSize: 1 }, {})) {
  listed.push(...page.collectionSummaries.map((summary) => summary.name));
}
seen.listedNames = listed;
const batch = await call("BatchGetCollection", aoss, new BatchGetCollectionCommand({
  ids: [seen.collection.id],
}));
seen.batchNames = batch.collectionDetails.map((detail) => detail.name);
const policy = await call("GetSecurityPolicy", aoss, new GetSecurityPolicyCommand({
  name: "js-encryption", type: "encryption",
}));
seen.policyDocument = policy.securityPolicyDetail.policy;  // a document type: an object
const tags = await call("ListTagsForResource", aoss, new ListTagsForResourceCommand({
  resourceArn: seen.collection.arn,
}));
seen.tags = tags.tags;

// An IAM user allowed one aoss read, with keys of its own.
await call("CreateUser", iam, new CreateUserCommand({ UserName: "js-reader" }));
await call("PutUserPolicy", iam, new PutUserPolicyCommand({
  UserName: "js-reader", PolicyName: "list-only",
  PolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: [
    { Effect: "Allow", Action: "aoss:ListCollections", Resource: "*" },
    { Effect: "Allow", Action: "sts:AssumeRole", Resource: "*" }] }),
}));
const key = await call("CreateAccessKey", iam, new CreateAccessKeyCommand({
  UserName: "js-reader",
}));
seen.userCreateDateIsDate = key.AccessKey.CreateDate instanceof Date;
const readerKeys = {
  accessKeyId: key.AccessKey.AccessKeyId, secretAccessKey: key.AccessKey.SecretAccessKey,
};
const reader = new OpenSearchServerlessClient(settings(readerKeys));
await call("ListCollections as the user", reader, new ListCollectionsCommand({}));
await refusal("BatchGetCollection as the user", reader, new BatchGetCollectionCommand({
  ids: [seen.collection.id],
}));

// A role the account trusts, assumed by the user for temporary credentials (a root may not).
const role = await call("CreateRole", iam, new CreateRoleCommand({
  RoleName: "js-admin",
  AssumeRolePolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: [
    { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${seen.account}:root` },
      Action: "sts:AssumeRole" }] }),
}));
await call("PutRolePolicy", iam, new PutRolePolicyCommand({
  RoleName: "js-admin", PolicyName: "aoss",
  PolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: [
    { Effect: "Allow", Action: "aoss:*", Resource: "*" }] }),
}));
const assumed = await call("AssumeRole", new STSClient(settings(readerKeys)), new AssumeRoleCommand({
  RoleArn: role.Role.Arn, RoleSessionName: "js-session", DurationSeconds: 900,
}));
seen.expirationIsDate = assumed.Credentials.Expiration instanceof Date;
const temporary = {
  accessKeyId: assumed.Credentials.AccessKeyId,
  secretAccessKey: assumed.Credentials.SecretAccessKey,
  sessionToken: assumed.Credentials.SessionToken,
};
const asRole = await call("GetCallerIdentity as the role", new STSClient(settings(temporary)),
                          new GetCallerIdentityCommand({}));
seen.roleSessionArn = asRole.Arn;
await call("BatchGetCollection as the role", new OpenSearchServerlessClient(settings(temporary)),
           new BatchGetCollectionCommand({ ids: [seen.collection.id] }));

// Event history and trails through CloudTrail's own API.
const events = [];
for await (const page of paginateLookupEvents({ client: cloudtrail, pageSize: 2 }, {
  LookupAttributes: [{ AttributeKey: "EventSource", AttributeValue: "aoss.amazonaws.com" }],
  MaxResults: 2,
})) {
  events.push(...page.Events);
}
seen.lookup = events.map((event) => ({
  eventName: event.EventName, eventTimeIsDate: event.EventTime instanceof Date,
  record: JSON.parse(event.CloudTrailEvent),
}));
const trails = await call("DescribeTrails", cloudtrail, new DescribeTrailsCommand({}));
seen.trailList = trails.trailList;

process.stdout.write(JSON.stringify(seen));
