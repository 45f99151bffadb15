"""Senseair CO2 sensors."""
