"""Handing customers over when members change role or leave (在职继承, 离职继承)."""
