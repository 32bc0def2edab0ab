"""Orders from shops and platforms: file imports, webhooks and pulls, joined to customers."""
