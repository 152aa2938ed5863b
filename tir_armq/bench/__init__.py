"""Benchmarks on the emulated board: XNNPACK (LiteRT) runs of single-layer models."""
