"""The features of this scrmbot, in the order their event handlers run for one event.

This is the one module that imports every feature: adding a feature is a package under
`handlers/` plus one line here.
"""

from __future__ import annotations

from handlers import Feature
from handlers.admin.feature import feature as admin
from handlers.boards.feature import feature as boards
from handlers.booking.feature import feature as booking
from handlers.care.feature import feature as care
from handlers.channels.feature import feature as channels
from handlers.customers.feature import feature as customers
from handlers.digest.feature import feature as digest
from handlers.handover.feature import feature as handover
from handlers.help.feature import feature as help_feature
from handlers.orders.feature import feature as orders
from handlers.parts.feature import feature as parts
from handlers.settlement.feature import feature as settlement
from handlers.sidebar.feature import feature as sidebar
from handlers.staff.feature import feature as staff
from handlers.tickets.feature import feature as tickets

FEATURES: tuple[Feature, ...] = (
    staff, channels, customers, tickets, settlement, care, digest, help_feature, admin,
    boards, sidebar, orders, handover, parts, booking)
