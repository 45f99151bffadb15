"""qsec: firmware_bridge."""
