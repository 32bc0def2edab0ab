"""Parts (配件) and their stock per warehouse, reserved for tickets."""
