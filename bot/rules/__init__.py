"""Business rules as data: the rules file, its sections, and their validation."""
