"""Tests of the model adapters, against the real SDKs."""
