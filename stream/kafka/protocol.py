"""
Kafka requests aiokafka does not offer: which operations the principal may perform on topics and groups.

Kafka answers that (KIP-430) in a Metadata response from version 8 on and in a DescribeGroups
response from version 3 on, when the request asks for it. aiokafka's Metadata request stops at
version 5 (its admin client's ``describe_topics`` cannot ask), and its DescribeGroups v3 request
parses the answer with the v2 layout, which drops the field. Metadata v8 is the newest version
without Kafka's flexible encoding, which aiokafka's types do not build for Metadata; brokers
from 2.3 on (and every 4.x) serve both.
"""

from __future__ import annotations

from aiokafka.protocol.admin import DescribeGroupsRequest_v3, DescribeGroupsResponse_v3
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int16, Int32, Schema, String

# Kafka's AclOperation codes: bit n of an authorized-operations field is operation n.
OPERATION_CODES = {
    "Read": 3,
    "Write": 4,
    "Create": 5,
    "Delete": 6,
    "Alter": 7,
    "Describe": 8,
    "DescribeConfigs": 10,
    "AlterConfigs": 11,
}
# The field's value when the broker was not asked or did not compute it.
NOT_PROVIDED = -(2**31)


def operations(field: int) -> frozenset[str] | None:
    """Return the operations an authorized-operations bit field grants; None if it holds none of the answer."""
    if field == NOT_PROVIDED:
        return None
    return frozenset(name for name, code in OPERATION_CODES.items() if field & (1 << code))


class MetadataResponseV8(Response):  # type: ignore[misc] # aiokafka is untyped
    """Metadata response v8 (the field names are Kafka's own)."""

    API_KEY = 3
    API_VERSION = 8
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("brokers", Array(("node_id", Int32), ("host", String("utf-8")), ("port", Int32), ("rack", String("utf-8")))),
        ("cluster_id", String("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            Array(
                ("error_code", Int16),
                ("name", String("utf-8")),
                ("is_internal", Boolean),
                (
                    "partitions",
                    Array(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", Array(Int32)),
                        ("isr_nodes", Array(Int32)),
                        ("offline_replicas", Array(Int32)),
                    ),
                ),
                ("topic_authorized_operations", Int32),
            ),
        ),
        ("cluster_authorized_operations", Int32),
    )


class MetadataRequestV8(RequestStruct):  # type: ignore[misc] # aiokafka is untyped
    """Metadata request v8: the topics named, never auto-created, with the principal's operations on each."""

    API_KEY = 3
    API_VERSION = 8
    RESPONSE_TYPE = MetadataResponseV8
    SCHEMA = Schema(
        ("topics", Array(String("utf-8"))),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
    )


class TopicOperationsRequest(Request[MetadataRequestV8]):  # type: ignore[misc] # aiokafka is untyped
    """Ask for ``topics``' metadata with the operations the connection's principal may perform on each."""

    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self._topics = topics

    def build(self, request_struct_class: type[MetadataRequestV8]) -> MetadataRequestV8:
        """Build the one version there is (aiokafka calls this after the version negotiation)."""
        # A topic absent must stay absent: auto-creation would make it with the broker's defaults.
        return request_struct_class(self._topics, False, False, True)  # noqa: FBT003 - the schema's order


class DescribeGroupsRequestV3(RequestStruct):  # type: ignore[misc] # aiokafka is untyped
    """DescribeGroups request v3, answered with the v3 layout (authorized operations last)."""

    API_KEY = 15
    API_VERSION = 3
    RESPONSE_TYPE = DescribeGroupsResponse_v3
    SCHEMA = DescribeGroupsRequest_v3.SCHEMA


class GroupOperationsRequest(Request[DescribeGroupsRequestV3]):  # type: ignore[misc] # aiokafka is untyped
    """Describe ``groups`` with the operations the connection's principal may perform on each."""

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: type[DescribeGroupsRequestV3]) -> DescribeGroupsRequestV3:
        """Build the one version there is (aiokafka calls this after the version negotiation)."""
        return request_struct_class(self._groups, True)  # noqa: FBT003 - include_authorized_operations
