"""The errors a user can cause beyond a bad spec, each a one-line message the command line maps to its exit status:
below every floor, so ``harness --help`` knows them without importing the store or the bundles."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store that cannot be reached, read or written (not a database, no server, a full disk): one line."""


class BundleError(RuntimeError):
    """A run that cannot be exported or a bundle that cannot be imported; the message is one line."""
