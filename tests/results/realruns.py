"""Constants shared by the real-run fixture (conftest.py) and its tests (imported by name: `conftest` is ambiguous)."""

LANGUAGE_SPLIT = "ood_language"
EVIL = {
    "run_id": "<img src=x onerror=alert(1)>",
    "policy": "<script>alert('policy')</script>",
    "checkpoint": "<b onmouseover=alert(2)>ckpt</b>",
}
