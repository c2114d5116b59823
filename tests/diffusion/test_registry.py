"""The one registry behind data sets, test splits and network kinds."""

from __future__ import annotations

import pytest

from diffusion.config import DataConfig, NetworkConfig
from diffusion.config_checks import ConfigError
from diffusion.config_registry import Registry
from diffusion.data import build_dataset, registered_datasets
from diffusion.nets import NetSpec, build_network, register_network


def test_unregistered_name_is_a_config_error_listing_the_registered_ones() -> None:
    reg: Registry = Registry("data.name", "no {name} here; have: {names}")
    reg.register("b")(len)
    reg.add("a", len)
    assert reg.names() == ("a", "b") and reg.get("a") is len
    with pytest.raises(ConfigError) as err:
        reg.get("c")
    assert (err.value.field, err.value.message) == ("data.name", "no 'c' here; have: a, b")


def test_only_allowed_names_may_register() -> None:
    reg: Registry = Registry("network.kind", "{name}", ("mlp",), "diffusion.config.NETWORK_KINDS")
    with pytest.raises(ValueError, match="not in diffusion.config.NETWORK_KINDS"):
        reg.register("transformer")
    with pytest.raises(ValueError, match="NETWORK_KINDS"):
        register_network("transformer")


def test_engine_registries_refuse_what_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusion.data import base as data_base
    from diffusion.nets import base as nets_base

    assert "swissroll" in registered_datasets()
    monkeypatch.setattr(data_base._REGISTRY, "_builders", {})
    with pytest.raises(ConfigError, match="data set 'swissroll' is not available") as err:
        build_dataset(DataConfig(), 0)
    assert err.value.field == "data.name"
    monkeypatch.setattr(nets_base._REGISTRY, "_builders", {})
    with pytest.raises(ConfigError, match="network 'mlp' is not available") as err:
        build_network(NetworkConfig(kind="mlp"), NetSpec((2,), 2, 4))
    assert err.value.field == "network.kind"
