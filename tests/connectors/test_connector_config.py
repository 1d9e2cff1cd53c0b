"""Every calendar connector package exports the same names, with one ``build_source`` signature."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest
from pydantic import BaseModel

from connectors.calendars import caldav, ews, google, graph, ics
from sync.config.calendars import CALENDAR_KINDS, CONNECTION_KINDS, CONNECTORS

PACKAGES = {"ics": ics, "graph": graph, "ews": ews, "google": google, "caldav": caldav}


@pytest.mark.parametrize("kind", PACKAGES)
def test_each_package_exports_its_two_config_models_and_build_source(kind: str) -> None:
    package: ModuleType = PACKAGES[kind]
    assert package.__all__ == ["CalendarConfig", "ConnectionConfig", "build_source"]
    assert package.__doc__
    assert issubclass(package.ConnectionConfig, BaseModel)
    assert issubclass(package.CalendarConfig, BaseModel)
    assert package.CalendarConfig.__name__.endswith("CalendarConfig")
    assert package.ConnectionConfig.__name__.endswith("ConnectionConfig")
    assert package.CalendarConfig.model_fields["kind"].default == kind


def test_every_build_source_takes_the_same_arguments() -> None:
    def shape(package: ModuleType) -> list[tuple[str, object, bool]]:
        parameters = inspect.signature(package.build_source).parameters.values()
        return [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in parameters]

    shapes = {kind: shape(package) for kind, package in PACKAGES.items()}
    assert all(s == shapes["ics"] for s in shapes.values()), shapes
    assert [name for name, _, _ in shapes["ics"]] == [
        "connection",
        "calendar",
        "mailbox",
        "limits",
        "base_dir",
    ]


def test_the_config_finds_each_kind_in_one_plain_mapping() -> None:
    assert CONNECTORS == PACKAGES
    assert CALENDAR_KINDS == ("ics", "graph", "ews", "google", "caldav")
    assert CONNECTION_KINDS == ("graph", "ews", "google", "caldav")  # ics takes no block
