"""Provider conformance suite: every transformer against a fake of its upstream."""
