"""Valid sample inputs and outputs generated from botocore shapes, shared by the test suites."""

from tests.conformance.test_protocol_roundtrip import sample_value  # noqa: F401
