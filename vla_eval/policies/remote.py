"""Kept for adapters written against ``vla_eval.policies.remote``: the openpi client policy lives in
:mod:`vla_eval.remote.openpi_policy` (wire code and its clients live together in ``remote/``)."""


def __getattr__(name: str):
    from vla_eval.remote import openpi_policy

    return getattr(openpi_policy, name)
