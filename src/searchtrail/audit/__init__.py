"""The CloudTrail product: record builder, event history queries (and, later, delivery)."""
