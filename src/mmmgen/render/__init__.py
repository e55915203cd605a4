"""Scores out: MIDI files, audio (FluidSynth or the SoundFont player), piano rolls, General MIDI names."""
