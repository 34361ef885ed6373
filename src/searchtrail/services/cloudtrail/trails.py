"""CloudTrail trails: create/update/delete, describe/list, logging, status, selectors, tags, keys.

Storage (contract with the delivery worker):
- a trail is a document in the account scope ``resources.scoped(account, "")``, kind
  ``cloudtrail.trail``, key = trail ARN. It holds the Trail shape's members (string members
  only when set) plus ``IsLogging``, ``StartLoggingTime``/``StopLoggingTime`` and
  ``ValidationEnabledTime`` (when UpdateTrail last turned log file validation on; epoch seconds),
  ``EventSelectors`` xor ``AdvancedEventSelectors``, ``Tags`` and ``CreatedTime``;
- delivery outcomes live in kind ``cloudtrail.trail-status`` (same scope and key), written by
  the delivery worker and only read here (GetTrailStatus) and removed with the trail.

Regions: a trail lives in its home Region. A multi-Region trail is also visible in every other
Region as a *shadow* (same ARN, read-only there); an organization trail is visible, read-only,
to every other account of the installation (the organization). Names resolve only to the
caller's own trails homed in the calling Region; ARNs resolve wherever the trail is. Changes
(Update/Delete/Start/Stop/PutEventSelectors) must be made in the home Region by the owner.

The organization's management account is the installation's default account
(``kinds.default_account``: ``setting``/``default-account`` in the global scope).

Every handler that acts on a trail appends ``{"ARN", "accountId", "type":
"AWS::CloudTrail::Trail"}`` to ``call.referenced_resources`` once the trail is resolved (for
CreateTrail: once created). DescribeTrails/ListTrails/ListPublicKeys enumerate and reference
nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime, timezone
from typing import Any, Callable

from searchtrail.audit import selectors
from searchtrail.audit.objectstore import ObjectStoreError
from searchtrail.auth.identities import Identities
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.call import Call
from searchtrail.services.registry import Preparer
from searchtrail.store import kinds
from searchtrail.store.api import Conflict

from . import naming
from .naming import error

TYPE_TRAIL = "AWS::CloudTrail::Trail"
MAX_TRAILS_PER_REGION = 5
MAX_TAGS = 50
MAX_LISTED_TAG_RESOURCES = 20  # ListTags: "The list has a limit of 20 ARNs" (model docs)
LIST_TRAILS_PAGE = 50

# Output members, in model order. String members are present only when set.
TRAIL_MEMBERS = (
    "Name", "S3BucketName", "S3KeyPrefix", "SnsTopicName", "SnsTopicARN",
    "IncludeGlobalServiceEvents", "IsMultiRegionTrail", "HomeRegion", "TrailARN",
    "LogFileValidationEnabled", "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn", "KmsKeyId",
    "HasCustomEventSelectors", "HasInsightSelectors", "IsOrganizationTrail", "RecursiveLogging",
)
WRITE_MEMBERS = tuple(m for m in TRAIL_MEMBERS
                      if m not in ("HomeRegion", "HasCustomEventSelectors", "HasInsightSelectors"))

_ISO = "%Y-%m-%dT%H:%M:%SZ"

BucketExists = Callable[[str], bool]
# call.prepared: the trail's bucket as looked up before the unit of work, off the event loop:
# (bucket, whether it exists, or why it could not be looked up)
BUCKET_LOOKUP = "S3BucketLookup"


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def _iso(epoch: float | None) -> str:
    return "" if epoch is None else _moment(epoch).strftime(_ISO)


def trail_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The Trail shape (GetTrail / DescribeTrails) of a stored trail."""
    return {key: doc[key] for key in TRAIL_MEMBERS if doc.get(key) is not None}


def write_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The flat CreateTrail / UpdateTrail response."""
    return {key: doc[key] for key in WRITE_MEMBERS if doc.get(key) is not None}


def visible_in(doc: dict[str, Any], region: str) -> bool:
    return doc["HomeRegion"] == region or bool(doc.get("IsMultiRegionTrail"))


def trail_status(doc: dict[str, Any], status: dict[str, Any] | None) -> dict[str, Any]:
    """GetTrailStatus: the 17 members as AWS fills them.

    Timestamps appear only when known; the six deprecated strings are always present, as
    ``YYYY-MM-DDTHH:MM:SSZ`` or ``""``. ``Latest*AttemptSucceeded`` repeats the attempt time
    when the latest attempt was the latest success.
    """
    status = status or {}
    out: dict[str, Any] = {"IsLogging": bool(doc.get("IsLogging"))}
    for member in ("LatestDeliveryError", "LatestNotificationError", "LatestDigestDeliveryError",
                   "LatestCloudWatchLogsDeliveryError"):
        if status.get(member):
            out[member] = status[member]
    for member in ("LatestDeliveryTime", "LatestNotificationTime", "LatestDigestDeliveryTime",
                   "LatestCloudWatchLogsDeliveryTime"):
        if status.get(member) is not None:
            out[member] = _moment(status[member])
    for member in ("StartLoggingTime", "StopLoggingTime"):
        if doc.get(member) is not None:
            out[member] = _moment(doc[member])
    for kind in ("Delivery", "Notification"):
        success = status.get(f"Latest{kind}Time")
        attempt = status.get(f"Latest{kind}AttemptTime")
        if attempt is None or (success is not None and success > attempt):
            attempt = success
        succeeded = success is not None and success >= attempt
        out[f"Latest{kind}AttemptTime"] = _iso(attempt)
        out[f"Latest{kind}AttemptSucceeded"] = _iso(attempt) if succeeded else ""
    out["TimeLoggingStarted"] = _iso(doc.get("StartLoggingTime"))
    out["TimeLoggingStopped"] = _iso(doc.get("StopLoggingTime"))
    return out


class TrailsHandlers:
    """The trail operations as ``handler(call, params) -> output``."""

    def __init__(self, bucket_exists: BucketExists | None = None, signing_keys: Any = None,
                 list_page_size: int = LIST_TRAILS_PAGE,
                 key_prefix_problem: Callable[[str], str | None] | None = None) -> None:
        self.bucket_exists: BucketExists = bucket_exists or (lambda _bucket: True)
        self.key_prefix_problem = key_prefix_problem or (lambda _prefix: None)
        self.signing_keys = signing_keys
        self.list_page_size = list_page_size

    def preparers(self) -> dict[str, Preparer]:
        return {"CreateTrail": self._look_up_bucket, "UpdateTrail": self._look_up_bucket}

    async def _look_up_bucket(self, params: dict[str, Any]) -> dict[str, Any]:
        """The trail's bucket looked up on a thread before the unit of work: an S3 endpoint
        that is slow or away then holds this call only, not the event loop and the batch every
        other call commits in (it held them for 15 s: 5 s per attempt, 3 attempts)."""
        bucket = params.get("S3BucketName")
        if not bucket:
            return {}
        try:
            return {BUCKET_LOOKUP: (bucket, await asyncio.to_thread(self.bucket_exists, bucket))}
        except ObjectStoreError as exc:
            return {BUCKET_LOOKUP: (bucket, exc)}

    def _require_bucket(self, call: Call, bucket: str) -> None:
        """S3BucketDoesNotExistException, or a 503 when the bucket cannot be looked up; raised
        in the unit, so after authorization and recorded."""
        looked_up, found = call.prepared.get(BUCKET_LOOKUP, (None, None))
        if looked_up != bucket:  # no preparer ran (a handler called directly)
            try:
                found = self.bucket_exists(bucket)
            except ObjectStoreError as exc:
                found = exc
        if isinstance(found, ObjectStoreError):
            raise ServiceError("ServiceUnavailableException",
                               f"Cannot look up the trail's bucket {bucket}: {found}. Nothing was "
                               "changed; retry once the S3 endpoint answers.", status=503)
        if not found:
            raise _no_bucket(bucket)

    def handlers(self) -> dict[str, Callable[[Call, dict], dict]]:
        return {
            "CreateTrail": self.create_trail,
            "UpdateTrail": self.update_trail,
            "DeleteTrail": self.delete_trail,
            "GetTrail": self.get_trail,
            "DescribeTrails": self.describe_trails,
            "ListTrails": self.list_trails,
            "StartLogging": self.start_logging,
            "StopLogging": self.stop_logging,
            "GetTrailStatus": self.get_trail_status,
            "PutEventSelectors": self.put_event_selectors,
            "GetEventSelectors": self.get_event_selectors,
            "AddTags": self.add_tags,
            "RemoveTags": self.remove_tags,
            "ListTags": self.list_tags,
            "ListPublicKeys": self.list_public_keys,
        }

    # --- storage and resolution -----------------------------------------------------------

    @staticmethod
    def _scope(call: Call, account: str | None = None) -> Any:
        return call.resources.scoped(account or call.account_id, "")

    def _own_trails(self, call: Call) -> list[dict[str, Any]]:
        return self._scope(call).list(kinds.TRAIL)

    @staticmethod
    def _management_account(call: Call) -> str | None:
        return kinds.default_account(call.resources.scoped("", ""))

    def _organization_trails(self, call: Call) -> list[dict[str, Any]]:
        """Organization trails the caller sees as a member (none for the management account)."""
        management = self._management_account(call)
        if not management or management == call.account_id:
            return []
        return [doc for doc in self._scope(call, management).list(kinds.TRAIL)
                if doc.get("IsOrganizationTrail")]

    def _require_management(self, call: Call) -> None:
        if self._management_account(call) != call.account_id:
            raise error("NotOrganizationMasterAccountException",
                        f"The account {call.account_id} is not the management account of an "
                        "organization. Only the management account can create or change "
                        "organization trails.")

    def _lookup(self, call: Call, identifier: str) -> dict[str, Any]:
        """The trail a Name/TrailName parameter designates, as the caller may read it."""
        if not naming.is_arn(identifier):
            naming.check_trail_name(identifier)
            arn = naming.trail_arn(call.region, call.account_id, identifier)
            doc = self._scope(call).get(kinds.TRAIL, arn)
            if doc is None:
                raise naming.unknown_trail(arn, call.account_id)
            return doc
        _, account, _ = naming.parse_trail_arn(identifier)
        doc = None
        if account == call.account_id:
            doc = self._scope(call).get(kinds.TRAIL, identifier)
        elif account == self._management_account(call):
            found = self._scope(call, account).get(kinds.TRAIL, identifier)
            if found is not None and found.get("IsOrganizationTrail"):
                doc = found
        if doc is None:
            raise naming.unknown_trail(identifier, call.account_id)
        return doc

    def _resolve(self, call: Call, identifier: str, *, change: bool) -> dict[str, Any]:
        doc = self._lookup(call, identifier)
        self._reference(call, doc)
        if change:
            if naming.parse_trail_arn(doc["TrailARN"])[1] != call.account_id:
                raise error("NotOrganizationMasterAccountException",
                            f"The trail {doc['TrailARN']} is an organization trail; only the "
                            "organization's management account can change it.")
            if doc["HomeRegion"] != call.region:
                raise error("InvalidHomeRegionException",
                            f"The trail {doc['TrailARN']} was created in {doc['HomeRegion']}; "
                            f"it can be changed only from {doc['HomeRegion']}, not from "
                            f"{call.region}.")
        return doc

    @staticmethod
    def _reference(call: Call, doc: dict[str, Any]) -> None:
        arn = doc["TrailARN"]
        call.referenced_resources.append(
            {"ARN": arn, "accountId": naming.parse_trail_arn(arn)[1], "type": TYPE_TRAIL})

    def _save(self, call: Call, doc: dict[str, Any]) -> None:
        self._scope(call).put(kinds.TRAIL, doc["TrailARN"], doc)

    # --- create / update / delete ---------------------------------------------------------

    def _check_room(self, call: Call, trails: list[dict[str, Any]], name: str, home: str,
                    multi: bool, exclude: str | None = None) -> None:
        """Name clash and the 5-trails-per-Region quota for a trail homed in ``home``."""
        others = [t for t in trails if t["TrailARN"] != exclude]
        for other in others:
            if other["Name"] == name and (multi or other.get("IsMultiRegionTrail")
                                          or other["HomeRegion"] == home):
                raise error("TrailAlreadyExistsException",
                            f"Trail {name} already exists for customer: {call.account_id}")
        regions = {t["HomeRegion"] for t in others} | {home}
        for region in sorted(regions) if multi else [home]:
            count = sum(1 for t in others if visible_in(t, region))
            if count >= MAX_TRAILS_PER_REGION:
                raise error("MaximumNumberOfTrailsExceededException",
                            f"User: {call.account_id} already has {MAX_TRAILS_PER_REGION} "
                            f"trails in {region}.")

    def _apply_settings(self, doc: dict[str, Any], params: dict[str, Any]) -> None:
        """Validate and apply the optional settings Create and Update share.

        On update an empty string removes an optional setting (prefix, SNS, KMS, CloudWatch).
        """
        home, account = doc["HomeRegion"], naming.parse_trail_arn(doc["TrailARN"])[1]
        if "S3BucketName" in params:
            doc["S3BucketName"] = naming.check_bucket_name(params["S3BucketName"])
        if "S3KeyPrefix" in params:
            prefix = naming.check_prefix(params["S3KeyPrefix"])
            problem = self.key_prefix_problem(prefix) if prefix else None
            if problem:  # no delivery could ever store the trail's files
                raise naming.error("InvalidS3PrefixException", f"S3 key prefix {prefix!r} "
                                   f"cannot be used with the local bucket folder: {problem}")
            _set_or_clear(doc, "S3KeyPrefix", prefix)
        if "SnsTopicName" in params:
            topic = params["SnsTopicName"]
            if topic:
                arn = naming.topic_arn(topic, home, account)
                doc["SnsTopicName"], doc["SnsTopicARN"] = topic, arn
            else:
                doc.pop("SnsTopicName", None)
                doc.pop("SnsTopicARN", None)
        if "KmsKeyId" in params:
            key = params["KmsKeyId"]
            _set_or_clear(doc, "KmsKeyId", naming.kms_key_arn(key, home, account) if key else "")
        if "CloudWatchLogsLogGroupArn" in params:
            group = params["CloudWatchLogsLogGroupArn"]
            _set_or_clear(doc, "CloudWatchLogsLogGroupArn",
                          naming.check_log_group_arn(group) if group else "")
        if "CloudWatchLogsRoleArn" in params:
            role = params["CloudWatchLogsRoleArn"]
            _set_or_clear(doc, "CloudWatchLogsRoleArn", naming.check_role_arn(role) if role else "")
        if bool(doc.get("CloudWatchLogsLogGroupArn")) != bool(doc.get("CloudWatchLogsRoleArn")):
            raise error("InvalidParameterCombinationException",
                        "You must specify both CloudWatchLogsLogGroupArn and "
                        "CloudWatchLogsRoleArn, or neither.")
        for param, member in (("IncludeGlobalServiceEvents", "IncludeGlobalServiceEvents"),
                              ("IsMultiRegionTrail", "IsMultiRegionTrail"),
                              ("EnableLogFileValidation", "LogFileValidationEnabled"),
                              ("IsOrganizationTrail", "IsOrganizationTrail"),
                              ("RecursiveLogging", "RecursiveLogging")):
            if params.get(param) is not None:
                doc[member] = bool(params[param])

    def create_trail(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        naming.check_trail_name(name)
        if params.get("IsOrganizationTrail"):
            self._require_management(call)
        if params.get("IsMultiRegionTrail") and params.get("IncludeGlobalServiceEvents") is False:
            raise error("InvalidParameterCombinationException",
                        "Multi-Region trail must include global service events.")
        arn = naming.trail_arn(call.region, call.account_id, name)
        doc: dict[str, Any] = {
            "Name": name,
            "S3BucketName": "",
            "IncludeGlobalServiceEvents": True,
            "IsMultiRegionTrail": False,
            "HomeRegion": call.region,
            "TrailARN": arn,
            "LogFileValidationEnabled": False,
            "HasCustomEventSelectors": False,
            "HasInsightSelectors": False,
            "IsOrganizationTrail": False,
            "RecursiveLogging": True,
        }
        self._apply_settings(doc, params)
        tags = naming.check_tags(params.get("TagsList") or [])
        if len(tags) > MAX_TAGS:
            raise error("TagsLimitExceededException",
                        f"A trail can have at most {MAX_TAGS} tags; {len(tags)} were specified.")
        self._check_room(call, self._own_trails(call), name, call.region, doc["IsMultiRegionTrail"])
        self._require_bucket(call, doc["S3BucketName"])
        doc.update({
            "IsLogging": False,
            "EventSelectors": [dict(s) for s in selectors.DEFAULT_EVENT_SELECTORS],
            "Tags": tags,
            "CreatedTime": _epoch(call.now),
            # Records stored before it under its ARN were a deleted trail's of the same name:
            # the delivery worker never puts them in this one's files.
            "RecordsAfterSeq": call.next_seq() if call.next_seq is not None else 0,
        })
        try:
            self._scope(call).insert(kinds.TRAIL, arn, doc)
        except Conflict:  # the checks above run in the same unit of work; belt and braces
            raise error("TrailAlreadyExistsException",
                        f"Trail {name} already exists for customer: {call.account_id}") from None
        self._reference(call, doc)
        return write_view(doc)

    def update_trail(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        current = self._resolve(call, params["Name"], change=True)
        if params.get("IsOrganizationTrail"):
            self._require_management(call)
        doc = dict(current)
        self._apply_settings(doc, params)
        if doc["IsMultiRegionTrail"] and not doc["IncludeGlobalServiceEvents"]:
            raise error("InvalidParameterCombinationException",
                        "Multi-Region trail must include global service events.")
        if doc["IsMultiRegionTrail"] and not current.get("IsMultiRegionTrail"):
            self._check_room(call, self._own_trails(call), doc["Name"], doc["HomeRegion"], True,
                             exclude=doc["TrailARN"])
        if "S3BucketName" in params:
            self._require_bucket(call, doc["S3BucketName"])
        if doc["LogFileValidationEnabled"] and not current.get("LogFileValidationEnabled"):
            doc["ValidationEnabledTime"] = _epoch(call.now)  # its digest chain begins anew
        self._save(call, doc)
        return write_view(doc)

    def delete_trail(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._resolve(call, params["Name"], change=True)
        scope = self._scope(call)
        scope.delete(kinds.TRAIL, doc["TrailARN"])
        scope.delete(kinds.TRAIL_STATUS, doc["TrailARN"])  # delivered objects stay in the bucket
        return {}

    # --- reading --------------------------------------------------------------------------

    def get_trail(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._resolve(call, params["Name"], change=False)
        return {"Trail": trail_view(doc)}

    def describe_trails(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        shadows = params.get("includeShadowTrails")
        shadows = True if shadows is None else shadows
        names = params.get("trailNameList") or []
        found: list[dict[str, Any]] = []
        if names:
            for identifier in names:
                try:
                    found.append(self._lookup(call, identifier))
                except ServiceError as failure:
                    if failure.code != "TrailNotFoundException":
                        raise  # malformed names and ARNs are errors; unknown ones are skipped
        else:
            own = self._own_trails(call)
            found = [t for t in own if t["HomeRegion"] == call.region]
            if shadows:
                found += [t for t in own
                          if t["HomeRegion"] != call.region and visible_in(t, call.region)]
                found += [t for t in self._organization_trails(call) if visible_in(t, call.region)]
        seen: set[str] = set()
        trails = []
        for doc in found:
            if doc["TrailARN"] not in seen:
                seen.add(doc["TrailARN"])
                trails.append(trail_view(doc))
        return {"trailList": trails}

    def list_trails(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        trails = self._own_trails(call)  # ordered by ARN
        token = params.get("NextToken")
        if token:
            after = _read_token(token)
            trails = [t for t in trails if t["TrailARN"] > after]
        page = trails[:self.list_page_size]
        out: dict[str, Any] = {"Trails": [{"TrailARN": t["TrailARN"], "Name": t["Name"],
                                           "HomeRegion": t["HomeRegion"]} for t in page]}
        if len(trails) > len(page):
            out["NextToken"] = _issue_token(page[-1]["TrailARN"])
        return out

    # --- logging and status ---------------------------------------------------------------

    def start_logging(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._resolve(call, params["Name"], change=True)
        if not doc.get("IsLogging"):
            doc["IsLogging"] = True
            doc["StartLoggingTime"] = _epoch(call.now)
            self._save(call, doc)
        return {}

    def stop_logging(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._resolve(call, params["Name"], change=True)
        if doc.get("IsLogging"):
            doc["IsLogging"] = False
            doc["StopLoggingTime"] = _epoch(call.now)
            self._save(call, doc)
        return {}

    def get_trail_status(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._resolve(call, params["Name"], change=False)
        owner = naming.parse_trail_arn(doc["TrailARN"])[1]
        status = self._scope(call, owner).get(kinds.TRAIL_STATUS, doc["TrailARN"])
        return trail_status(doc, status)

    # --- event selectors ------------------------------------------------------------------

    def put_event_selectors(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._resolve(call, params["TrailName"], change=True)
        basic = params.get("EventSelectors")
        advanced = params.get("AdvancedEventSelectors")
        if basic is not None and advanced is not None:
            raise error(selectors.INVALID, "You can specify EventSelectors or "
                        "AdvancedEventSelectors in a PutEventSelectors request, but not both.")
        if basic is None and advanced is None:
            raise error(selectors.INVALID, "You must specify either EventSelectors or "
                        "AdvancedEventSelectors.")
        out: dict[str, Any] = {"TrailARN": doc["TrailARN"]}
        if basic is not None:
            doc["EventSelectors"] = out["EventSelectors"] = selectors.validate_event_selectors(basic)
            doc.pop("AdvancedEventSelectors", None)
        else:
            doc["AdvancedEventSelectors"] = out["AdvancedEventSelectors"] = (
                selectors.validate_advanced_event_selectors(advanced))
            doc.pop("EventSelectors", None)
        doc["HasCustomEventSelectors"] = True
        self._save(call, doc)
        return out

    def get_event_selectors(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._resolve(call, params["TrailName"], change=False)
        out: dict[str, Any] = {"TrailARN": doc["TrailARN"]}
        if doc.get("AdvancedEventSelectors") is not None:
            out["AdvancedEventSelectors"] = doc["AdvancedEventSelectors"]
        else:
            out["EventSelectors"] = doc.get("EventSelectors", selectors.DEFAULT_EVENT_SELECTORS)
        return out

    # --- tags -----------------------------------------------------------------------------

    def _tag_target(self, call: Call, resource_id: str) -> dict[str, Any]:
        service, region, account, resource = naming.parse_resource_arn(resource_id)
        if service != "cloudtrail":
            raise error("ResourceTypeNotSupportedException",
                        f"Resource type not supported: {resource_id}. Tags apply to trails, "
                        "event data stores, dashboards and channels.")
        if region != call.region:
            raise error("CloudTrailARNInvalidException",  # real text
                        "Region in ARN is wrong, you can only access resources in region "
                        f"{call.region}.")
        kind = resource.split("/", 1)[0]
        if kind == "eventdatastore":
            raise error("EventDataStoreNotFoundException",
                        f"The specified event data store {resource_id} was not found.")
        if kind == "channel":
            raise error("ChannelNotFoundException",
                        f"The specified channel {resource_id} was not found.")
        if kind != "trail":
            raise error("ResourceNotFoundException", f"Resource not found: {resource_id}")
        naming.parse_trail_arn(resource_id)
        doc = self._scope(call).get(kinds.TRAIL, resource_id) if account == call.account_id else None
        if doc is None:
            raise error("ResourceNotFoundException", f"Resource not found: {resource_id}")
        self._reference(call, doc)
        return doc

    def add_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._tag_target(call, params["ResourceId"])
        new = naming.check_tags(params["TagsList"])
        merged = {tag["Key"]: tag for tag in doc.get("Tags", [])}
        merged.update((tag["Key"], tag) for tag in new)
        if len(merged) > MAX_TAGS:
            raise error("TagsLimitExceededException",
                        f"A trail can have at most {MAX_TAGS} tags; this request would leave "
                        f"{doc['TrailARN']} with {len(merged)}.")
        doc["Tags"] = list(merged.values())
        self._save(call, doc)
        return {}

    def remove_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._tag_target(call, params["ResourceId"])
        gone = {tag["Key"] for tag in naming.check_tags(params["TagsList"])}
        doc["Tags"] = [tag for tag in doc.get("Tags", []) if tag["Key"] not in gone]
        self._save(call, doc)
        return {}

    def list_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("NextToken"):
            raise error("InvalidTokenException", "The NextToken is not valid.")
        if len(params["ResourceIdList"]) > MAX_LISTED_TAG_RESOURCES:
            raise error("InvalidParameterException",
                        f"ResourceIdList can name at most {MAX_LISTED_TAG_RESOURCES} ARNs; "
                        f"{len(params['ResourceIdList'])} were given.")
        listed = []
        for resource_id in params["ResourceIdList"]:
            doc = self._tag_target(call, resource_id)
            listed.append({"ResourceId": resource_id, "TagsList": list(doc.get("Tags", []))})
        return {"ResourceTagList": listed}

    # --- public keys ----------------------------------------------------------------------

    def list_public_keys(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("NextToken"):
            raise error("InvalidTokenException", "The NextToken is not valid.")
        end = params.get("EndTime") or call.now
        start = params.get("StartTime") or call.now
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        if end.tzinfo is None:
            end = end.replace(tzinfo=timezone.utc)
        if start > end:
            raise error("InvalidTimeRangeException", "Start time must be before end time.")
        if self.signing_keys is None:
            return {"PublicKeyList": []}
        keys = self.signing_keys(call.resources).region_public_keys(
            Identities(call.resources).accounts(), call.account_id, call.region, start, end,
            call.now)
        return {"PublicKeyList": [{"Value": key.public_der, "ValidityStartTime": key.valid_from,
                                   "ValidityEndTime": key.valid_to, "Fingerprint": key.fingerprint}
                                  for key in keys]}


def _no_bucket(bucket: str) -> ServiceError:
    return error("S3BucketDoesNotExistException", f"S3 bucket {bucket} does not exist!")  # moto text


def _set_or_clear(doc: dict[str, Any], member: str, value: str) -> None:
    if value:
        doc[member] = value
    else:
        doc.pop(member, None)


def _issue_token(last_arn: str) -> str:
    return base64.urlsafe_b64encode(last_arn.encode()).decode().rstrip("=")


def _read_token(token: str) -> str:
    try:
        arn = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        arn = ""
    if not arn.startswith("arn:"):
        raise error("InvalidNextTokenException", "The NextToken is not valid.")
    return arn
