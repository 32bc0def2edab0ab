"""Digests: daily figures per region for its manager, every region for headquarters."""
