"""Text line protocols of microcontroller kits."""
