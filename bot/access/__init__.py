"""Access: who may do what, on which region's data, and the audit of what was done.

Shared by the chat commands and the web pages, so both surfaces ask the same questions.
"""
