"""The protocol models build their validators on first use, not at import (start-up time):
these build every one, so a model that cannot be built fails here rather than on a live call."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from bridgehost.protocol import bridge, control, events


def _models() -> list[type[BaseModel]]:
    found = {
        model
        for module in (bridge, control, events)
        for _, model in inspect.getmembers(module, inspect.isclass)
        if issubclass(model, BaseModel) and model.__module__ == module.__name__
    }
    return sorted(found, key=lambda model: (model.__module__, model.__qualname__))


def test_the_models_are_many_and_deferred():
    models = _models()
    assert len(models) >= 40
    assert all(model.model_config.get("defer_build") for model in models)


@pytest.mark.parametrize("model", _models(), ids=lambda model: model.__qualname__)
def test_every_protocol_model_builds(model: type[BaseModel]):
    assert model.model_rebuild(force=True) is not False
    assert model.__pydantic_complete__
    model.model_json_schema()


def test_the_union_adapters_build():
    events.call_event_adapter().json_schema()
    bridge._bridge_adapter().json_schema()
    bridge._gateway_adapter().json_schema()
    assert events.call_event_adapter() is events.call_event_adapter()
