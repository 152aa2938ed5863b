"""Model build: int8/uint8 TFLite models to a Relax library whose convolutions are our kernels."""
