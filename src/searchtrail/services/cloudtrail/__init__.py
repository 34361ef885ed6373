"""The CloudTrail API: event history now; trails, selectors and keys come with delivery."""
