"""Timings: each strategy against a GEMM reference (`timing`) and other libraries (`peers`)."""
