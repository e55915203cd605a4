"""The MMM language: its vocabulary, MIDI -> text, text -> MIDI and bar-fill text."""
