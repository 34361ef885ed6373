"""searchtrail: an OpenSearch Serverless control plane whose every call is a CloudTrail record."""

__version__ = "0.1.0"
