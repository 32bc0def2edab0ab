"""scrmbot: a chatbot-centric SCRM server for WeCom and WeChat Official Accounts."""

__version__ = "0.1.0"
