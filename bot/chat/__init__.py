"""The command framework: command registry, argument specs, the middleware chain, replies."""
