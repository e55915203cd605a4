"""MIDI collections -> datasets: the music21 corpus export, genre labels, ``prepare``."""
