"""Training: mini-batch epochs with any strategy and optimizer (`train`), the run's
configuration (`config`), and checkpoints that resume bit for bit (`checkpoint`)."""
