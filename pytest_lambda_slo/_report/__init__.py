"""What a person or a CI system reads: the terminal report and the other outputs."""
