"""The tokenizer, run folders, training (batching, callbacks), sweeps and evaluation."""
