"""Remote policies over websocket + msgpack, wire-compatible with openpi's ``openpi_client``.

* :mod:`vla_eval.remote.protocol` — msgpack with numpy arrays as ``{__ndarray__, data, dtype, shape}``.
* :mod:`vla_eval.remote.client` — a blocking client with connect / request timeouts and reconnects.
* :mod:`vla_eval.remote.server` — serves any registered policy (``vla-eval serve``), batching
  requests across connections with per-episode state.
* :mod:`vla_eval.remote.supervisor` — the run's own server (``vla-eval run --policy-server auto``).
* :mod:`vla_eval.remote.obs_format` — how observations are laid out on the wire.
"""
