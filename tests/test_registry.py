import pytest

from vla_eval.backends import BACKENDS, Backend
from vla_eval.errors import ConfigError, UnknownNameError
from vla_eval.policies import POLICIES, Policy
from vla_eval.registry import Registry


def test_module_class_must_be_a_subclass_before_it_is_called():
    with pytest.raises(ConfigError, match="not a vla_eval.adapter.Policy subclass"):
        POLICIES.get("os:system")
    with pytest.raises(ConfigError, match="not a vla_eval.backends.Backend subclass"):
        BACKENDS.get("os:abort")
    assert issubclass(POLICIES.get("vla_eval.policies.baselines:NoopPolicy"), Policy)
    assert issubclass(BACKENDS.get("vla_eval.sims.tabletop.backend:TabletopBackend"), Backend)


def test_missing_module_is_unknown_but_a_broken_module_shows_its_error(tmp_path, monkeypatch):
    with pytest.raises(UnknownNameError):
        POLICIES.get("no_such_module_h13:Thing")
    (tmp_path / "broken_h13.py").write_text("raise RuntimeError('config file missing at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="RuntimeError: config file missing at import"):
        POLICIES.get("broken_h13:Policy")
    with pytest.raises(ConfigError, match="has no attribute 'Nope'"):
        POLICIES.get("vla_eval.policies.baselines:Nope")


def test_lazy_registered_strings_are_checked_too():
    reg: Registry[Policy] = Registry("policy", base=Policy)
    reg.register("shell", "os:system")
    with pytest.raises(ConfigError, match="not a"):
        reg.get("shell")


def test_openvla_model_class_must_be_a_transformers_model():
    pytest.importorskip("transformers")
    from vla_eval.policies.openvla import load_model_class

    with pytest.raises(ConfigError, match="not a transformers.*PreTrainedModel subclass"):
        load_model_class("os:system")
    import transformers

    assert load_model_class("transformers:LlamaForCausalLM") is transformers.LlamaForCausalLM
