"""Constrained generation: grammar masks, the decoding engine and songs with their operations."""
