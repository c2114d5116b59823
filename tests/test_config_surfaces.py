"""The New run form, the CLI (`difflab train`, `difflab submit`) and the worker refuse the same
bad configs with the same messages: all three validate with the one schema (diffusion.config)."""

from __future__ import annotations

import copy

import pytest

from dashboard import forms
from difflab.cli import main as difflab
from diffusion.config import ConfigError, RunConfig
from diffusion.config_checks import parse_value, set_path
from diffusion.presets import PRESETS
from worker.train_runner import stored_config

PRESET = "swissroll-smoke"
# (overrides, the fields refused): each is something a person can set on the form too
BAD = [
    (["data.options.sigma=-1"], ["data.options.sigma"]),
    (["diffusion.T=1", "train.steps=0", "train.lr=0"], ["diffusion.T", "train.steps", "train.lr"]),
    (["diffusion.beta1=0.7"], ["diffusion.beta1"]),
    (["diffusion.kind=binomial"], ["diffusion.kind"]),
    (["diffusion.kind=binomial", "diffusion.schedule=learned"], ["diffusion.schedule"]),
    (["diffusion.T=100000", "train.batch_size=100000"], ["diffusion.T"]),
    (["network.hidden=[]"], ["network.hidden"]),
    (["network.kind=rbf", "network.options.width=0"], ["network.options.width"]),
    (["network.kind=heartbeat", "network.options.width=5000"], ["network.options.width"]),
]


def _form_values(overrides: list[str]) -> dict:
    values = forms.defaults_for(PRESET)
    for item in overrides:
        key, _, text = item.partition("=")
        value = parse_value(text)
        spec = forms.spec(key, values["data.name"], values.get("network.kind", "mlp"))
        values[key] = ", ".join(map(str, value)) if spec.widget == "list" else value
    return values


def _raw(overrides: list[str]) -> dict:
    """The stored record a worker would find: the preset's dict with the overrides, unchecked."""
    raw = copy.deepcopy(PRESETS[PRESET].to_dict())
    for item in overrides:
        key, _, text = item.partition("=")
        if key == "network.kind":
            raw["network"]["options"] = {}
        set_path(raw, key, parse_value(text), ("data", "diffusion", "network", "train"))
    return raw


@pytest.mark.parametrize(("overrides", "fields"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_form_cli_and_worker_refuse_alike(overrides, fields, capsys):
    form = forms.validate_form(_form_values(overrides), PRESET)
    assert not form.ok and list(form.errors) == fields, form.errors
    expected = "; ".join(f"{f}: {m}" for f, m in form.errors.items())

    sets = [arg for item in overrides for arg in ("--set", item)]
    if any(o.startswith("network.kind=") for o in overrides):
        sets = ["--set", "network.options={}", *sets]
    for command in (["submit", PRESET], ["train", PRESET, "--out", "unused"]):
        assert difflab([*command, *sets]) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(expected), (command, err)

    with pytest.raises(ConfigError) as info:
        stored_config(_raw(overrides))
    assert str(info.value) == expected
    with pytest.raises(ConfigError) as info:  # the Python API
        RunConfig.from_dict(_raw(overrides))
    assert info.value.as_dict() == form.errors


def test_the_untouched_form_and_the_preset_are_one_config():
    for name in forms.preset_names():
        form = forms.validate_form(forms.defaults_for(name), name)
        assert form.ok and form.config == PRESETS[name].with_overrides([f"name={name}"])
