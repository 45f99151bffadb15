"""Plantower particulate matter sensors."""
