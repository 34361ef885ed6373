"""The AWS wire: botocore model catalog, request parser, validator, serializer and error funnel."""
