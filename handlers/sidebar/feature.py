"""The WeCom sidebar (聊天工具栏 and 客户详情 page): the customer beside the chat, signed for
WeCom's JS-SDK, behind the console's login and the same role and region middleware; its
tickets, quick replies with the compliance check, and the console's reply library."""

from handlers import Feature
from handlers.sidebar import library, replies, tickets
from handlers.sidebar.pages import pages

feature = Feature("sidebar", console=pages.including(tickets.pages, replies.pages,
                                                      library.pages))
