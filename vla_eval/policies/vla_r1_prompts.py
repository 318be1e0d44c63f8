"""VLA-R1's prompt: upstream's format requests and the chat turn it is sent in.

Kept apart from the adapter so the exact bytes upstream sends (GigaAI-research/VLA-R1
``scripts/inference.py`` and ``scripts/server.py``) can be pinned by tests with no model loaded.
"""

from __future__ import annotations

import re
from typing import Any, Literal

# Upstream's format requests, verbatim: GigaAI-research/VLA-R1 scripts/inference.py line 12
# (traj_form) and line 11 (aff_form; "define" is upstream's word).  The trailing "\n<image>" is
# part of the text upstream sends: the sharegpt-style training prompts mark the image with it.
TRAJECTORY_SUFFIX = (
    " Please output the optimal trajectory of the end-effector to the target object in the format "
    "<output>[[x1, y1], [x2, y2], ...]</output>.\n<image>"
)
AFFORDANCE_SUFFIX = (
    " Please output the 2D affordance region define by bounding box of the object in the format "
    '<output>{"x": value, "y": value, "width": value, "height": value}</output>.\n<image>'
)
PROMPT_TEMPLATES = {
    "trajectory": "{instruction}" + TRAJECTORY_SUFFIX,
    "affordance": "{instruction}" + AFFORDANCE_SUFFIX,
}
IMAGE_MARKER = "<image>"

QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2.5-VL's own chat template (image + text subset); used when a checkpoint ships none."""

IMAGE_PAD = "<|image_pad|>"

PromptStyle = Literal["upstream_server", "upstream_training"]


def build_prompt(instruction: str, variant: str = "trajectory", template: str | None = None) -> str:
    """The prompt string upstream's client sends: the instruction, unchanged, then the format
    request (scripts/inference.py lines 69 and 77: ``prompt + aff_form`` / ``prompt + traj_form``)."""
    tpl = template if template is not None else PROMPT_TEMPLATES[variant]
    return tpl.replace("{instruction}", instruction)


def user_content(prompt: str, style: PromptStyle = "upstream_server") -> list[dict[str, Any]]:
    """The user turn's content list, composed as upstream composes it.

    * ``upstream_server`` (scripts/server.py lines 22-26, ``convert_to_user_message``): one text
      item ``" " + prompt`` (a leading space; the literal ``<image>`` stays in the text) followed
      by the image.
    * ``upstream_training`` (RFT_training/verl/verl/utils/dataset/rl_dataset.py lines 195-214,
      ``_build_messages``): the prompt split at ``<image>``, the marker replaced by the image.
    """
    if style == "upstream_server":
        return [{"type": "text", "text": f" {prompt}"}, {"type": "image"}]
    parts = [p for p in re.split(f"({re.escape(IMAGE_MARKER)})", prompt) if p != ""]
    content = [{"type": "image"} if p == IMAGE_MARKER else {"type": "text", "text": p} for p in parts]
    n = sum(c["type"] == "image" for c in content)
    if n != 1:
        raise ValueError(f"prompt_style upstream_training needs exactly one {IMAGE_MARKER} in the prompt, found {n}")
    return content


def render_chat(
    tokenizer: Any,
    template: str,
    prompt: str,
    n_image_tokens: int,
    system_prompt: str | None = None,
    style: PromptStyle = "upstream_server",
) -> str:
    """Chat-formatted text as upstream's processor renders it, with the single ``<|image_pad|>``
    expanded to the image's token count, as the processor would."""
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": user_content(prompt, style)})
    text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=True)
    if text.count(IMAGE_PAD) != 1:
        raise ValueError(f"chat template produced {text.count(IMAGE_PAD)} image placeholders, expected 1")
    return text.replace(IMAGE_PAD, IMAGE_PAD * n_image_tokens)
