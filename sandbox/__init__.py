"""Telegram sandbox: a local, in-memory stand-in for the Telegram Bot API over real HTTP.

Run :class:`TelegramSandbox`, point aiogram at it with
``AiohttpSession(api=TelegramAPIServer.from_base(sandbox.base_url))``, and drive simulated
users with :class:`SandboxClient` / :class:`SandboxUser`.
"""

from .client import SandboxClient, SandboxError, SandboxUser
from .limits import SandboxLimits
from .server import TelegramSandbox

__all__ = ["SandboxClient", "SandboxError", "SandboxLimits", "SandboxUser", "TelegramSandbox"]
