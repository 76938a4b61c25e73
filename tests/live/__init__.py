"""Tests against real services, run only when their connection settings are given."""
