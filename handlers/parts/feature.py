"""Parts: /parts and /ticket parts from chat; `scrmbot parts import` (and the sandbox
console's `import parts …`) counts stock in; ticket close and cancel consume or release."""

from handlers import Feature
from handlers.parts.commands import commands

feature = Feature("parts", commands=commands)
