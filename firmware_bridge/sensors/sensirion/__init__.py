"""Sensirion sensors: SPS30 (SHDLC over UART) and SCD30 (Modbus RTU)."""
