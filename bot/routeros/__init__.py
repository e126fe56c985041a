"""RouterOS export knowledge, pure: normalize, header, check, redact, diff."""
