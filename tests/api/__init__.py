"""Tests of the HTTP API, the SDK and ``ridgerider serve``."""
