"""Channel welcome messages: staff write them as jinja2 text, rendered in a sandbox.

Staff-written templates are untrusted input, so they are rendered by jinja2's
SandboxedEnvironment and checked when the channel is created, not when a customer scans.
"""

from __future__ import annotations

import functools

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

WELCOME_VARIABLES = ("name", "store", "staff", "channel")
MAX_WELCOME_BYTES = 4000  # send_welcome_msg's text limit

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class WelcomeTemplateError(ValueError):
    pass


@functools.lru_cache(maxsize=256)
def _compiled(template: str) -> Template:
    """Channels' welcome texts compile once, not on every scan."""
    return _env.from_string(template)


def render_welcome(template: str, *, name: str, store: str | None, staff: str,
                   channel: str) -> str:
    """Render a welcome text; raises WelcomeTemplateError on any template problem."""
    try:
        text = _compiled(template).render(name=name, store=store or "", staff=staff,
                                          channel=channel).strip()
    except TemplateError as exc:
        msg = f"欢迎语模板有误：{exc}（可用变量：{'、'.join(WELCOME_VARIABLES)}）"
        raise WelcomeTemplateError(msg) from None
    if len(text.encode()) > MAX_WELCOME_BYTES:
        msg = f"欢迎语过长：{len(text.encode())} 字节，上限 {MAX_WELCOME_BYTES}"
        raise WelcomeTemplateError(msg)
    return text


def check_welcome(template: str) -> None:
    """Fail now, with the reason, rather than on a customer's scan."""
    render_welcome(template, name="王女士", store="示例门店", staff="张三", channel="示例渠道")
