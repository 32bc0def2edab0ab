"""Channels: channel QR codes, the scans they bring, and each scan's welcome."""
