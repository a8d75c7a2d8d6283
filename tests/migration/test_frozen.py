"""Released revisions are frozen: every database they were applied to recorded each file's SHA-256,
and verify-schema reports ``revision_edited`` once a file changes. A refactoring that rewrites
names across the tree must leave these files alone; a new revision adds its line here."""

from __future__ import annotations

import hashlib
from pathlib import Path

from memctl.migration.revisions import ordered, script_directory

RELEASED = {
    "0001": "07bd2dda5a0baedadd66cf40420f9c1a9edc40592d8bf2c8633542e931f462ed",
    "0002": "e7135f7cc95db1e647491fb3eab5c118ad7222c0684713a1dff543012f7c14ed",
    "0003": "42dc4310c9377a9802dc812e91b9215d4dfaede16aae56afeb66ed29ece2bcff",
    "0004": "a3339cac48f1cfce26c2e0caa28dc08fde1e0880269bf5c576fd6252900bbc5c",
    "0005": "774e080022866f8ca1e13c3c7e5570767451847baa32edad4dff78ff9fbb17bc",
    "0006": "f32468e5add7f1d5e656b83ebbfcdd0a0ea93d095491909f5e4985ff2a676ada",
    "0007": "e6e89bd3a5f2e577df8a27805eef56b6a3387cf666f81ff868cafcafce557496",
    "0008": "3106e1fcc893544d3bd61ff90ece25bbc6f7c5d95fbe19d8cf7c721a61251970",
    "0009": "7e5964980d97afbbb3921845ace5d603d606c2f47b2103676d79f715c1651068",
    "0011": "b44835085b766d15b5fc53264de00d718d8ffe5a2e038d249d01e2c9c0403a94",
    "0012": "ae75afcff115d760652c8458dd384e60ce66e57911e3bda76fae149320bae2c9",
    "0013": "0777fbdedef9e0c9583739d6bd5ff629204c6c1f9c66c28138d1b1e13ba55ed0",
    "0014": "afb333d788199500a241f3c09308f455f029c675e2689ead8cdbe6ebb20bfb1b",
    "0015": "c38b823a49eb76c59a187591b706a0e580de1c9a1c8689fed135b10e73ac91b7",
    "0016": "940d1201488b586458914b24e56e8f313e6b45043fab5b96f3e613c81194d790",
    "0017": "737ae1f30d00386651976bb5cc0de7450b0e541b60b04227b0c695fe44daa495",
    "0018": "b44ad26b46a076c04c1cd9e0c8b3ea2026000c5aa76e577ede2a50d4cb478411",
    "0010": "de7b86dec749ea1dd02131c950d23ca59744cd3927df31de615c68b5edccd536",
}


def test_released_revision_files_are_unchanged():
    script = script_directory()
    actual = {rev: hashlib.sha256(Path(script.get_revision(rev).path).read_bytes()).hexdigest() for rev in ordered()}
    assert set(actual) == set(RELEASED), "a new revision: add its SHA-256 to RELEASED"
    edited = [rev for rev, digest in actual.items() if digest != RELEASED[rev]]
    assert not edited, f"released revisions edited: {edited}"
