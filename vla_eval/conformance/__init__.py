"""Adapter conformance: oracles built from the privileged experts speak each adapter's native
output format and drive the adapter's own real path; their success is compared with the
expert's on the same episodes (``vla-eval conformance``, docs/conformance.md)."""
