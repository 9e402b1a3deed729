"""Helpers shared by the loss API tests: wire encoding, problem checks, input strategies."""
