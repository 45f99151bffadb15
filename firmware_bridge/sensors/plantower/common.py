"""What the PMS5003T, PMS5003S and PMS5003ST share with the PMS5003 beyond its frame helpers.

All three stream in active mode with the PMS5003's serial settings, start-up
commands, warm-up and framer (:func:`pms5003.find_frame`, which cuts every
Plantower frame), and their first data words are the PMS5003's particle
words: the same warm-up and consistency checks apply
(:func:`pms5003.checked_words`).

Sources: Plantower "PMS5003 series data manual" v2.3 (2016), appendix I
"transport protocol - Active Mode"; "PMS5003T series data manual" and
"PMS5003ST series data manual" (2016 editions, linked from avaldebe/PyPMS
``docs/sensors/Plantower.md``), same appendix; the layouts cross-checked
with esphome/esphome ``esphome/components/pmsx003/pmsx003.cpp``
(``parse_data_``).  Serial: 9600 baud, 8 data bits, no parity, 1 stop bit,
3.3 V TTL.
"""

from __future__ import annotations

import struct
from typing import Mapping

from firmware_bridge.sensors.plantower import pms5003

KIND = "stream"  # active mode: the sensor pushes frames on its own
BAUDRATE = pms5003.BAUDRATE
BYTESIZE = pms5003.BYTESIZE
PARITY = pms5003.PARITY
STOPBITS = pms5003.STOPBITS
INIT_COMMANDS = pms5003.INIT_COMMANDS
WARMUP_S = pms5003.WARMUP_S
find_frame = pms5003.find_frame


def frame_values(frame: bytes, words: struct.Struct, model: str, particles: tuple[str, ...],
                 scaled: Mapping[str, tuple[int, float]]) -> dict[str, float]:
    """Check a data frame and its particle words; return the particle values and the scaled ones.

    Parameters
    ----------
    frame : the whole frame (see :func:`pms5003.unpack`)
    words : the layout of the data words
    model : named in error messages
    particles : the names of the first data words, in frame order [µg/m³, #/0.1 L]
    scaled : name -> (index of its data word, what the word is divided by), e.g. ``(10, 10)``
        for a temperature sent in 0.1 °C

    Raises
    ------
    FrameError : wrong size, header, length field or checksum; a frame of another model; mass
        (``pm10``) without any particle above 0.3 µm
    Unsupported : an acknowledgement of a mode or sleep command
    WarmingUp : all particle words are zero (fan spinning up)
    """
    data = pms5003.checked_words(frame, words, model, len(particles))
    values = dict(zip(particles, map(float, data)))
    for name, (index, scale) in scaled.items():
        values[name] = data[index] / scale
    return values
