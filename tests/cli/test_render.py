"""The renderer: formatters are registered by class name, so each name must be a real class."""

from __future__ import annotations

import importlib
import json

from memctl.cli import render
from memctl.migration.runner import MigrationResult, RevisionInfo


def test_every_formatter_names_a_real_class():
    for name in render.FORMATTERS:
        module, _, cls = name.removeprefix("list[").removesuffix("]").rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls, None), type), name


def test_results_find_their_formatter_and_json_keeps_every_field(capsys):
    result = MigrationResult("downgrade", "0009", "0007", ["0009", "0008"], 1)
    assert render.sections(result)[0].title == "Migration"
    info = RevisionInfo("0009", "0008", "api tokens", True, True, True)
    assert render.sections([info])[0].title == "Revisions"
    render.emit(result, as_json=True)
    assert json.loads(capsys.readouterr().out)["revisions"] == ["0009", "0008"]
