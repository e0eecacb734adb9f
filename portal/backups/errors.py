from __future__ import annotations


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message is the one-line reason."""


class RestoreVerificationError(BackupError):
    """The data was restored but does not match its manifest or its audit chain is broken."""
