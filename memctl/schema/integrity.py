"""Integrity of the revision directory: applied revision files must not change afterwards."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.migration.revisions import CHECKSUM_TABLE, file_checksum, path_between, stored_checksums
from memctl.schema.diff import Finding, qualified


async def checksum_findings(conn: AsyncConnection, current: str | None,
                            script_location: Path | None = None) -> list[Finding]:
    """A finding per applied revision whose file changed since it was applied, or was never recorded.

    Kinds: ``revision_edited`` (expected = recorded hash, actual = file hash, 12 hex digits),
    ``revision_unrecorded`` (applied outside memctl, e.g. from ``--sql`` output).
    """
    stored = await stored_checksums(conn)
    findings: list[Finding] = []
    for revision in path_between(None, current, script_location) if current else []:
        actual = file_checksum(revision, script_location)
        recorded = stored.get(revision)
        obj = qualified(*CHECKSUM_TABLE.split("."), revision)
        if recorded is None:
            findings.append(Finding("revision_unrecorded", obj, "checksum recorded", None))
        elif recorded != actual:
            findings.append(Finding("revision_edited", obj, recorded[:12], actual[:12]))
    return findings
