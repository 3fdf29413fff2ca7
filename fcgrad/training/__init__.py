"""Training: mini-batch epochs with any strategy and optimizer, and checkpoints that resume
bit for bit."""
