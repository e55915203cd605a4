"""mmmgen."""
