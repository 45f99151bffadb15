"""Winsen gas sensors."""
