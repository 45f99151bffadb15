"""NMEA 0183 GPS receivers."""
