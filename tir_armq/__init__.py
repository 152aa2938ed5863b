"""tir_armq: bit-exact int8/uint8 NHWC conv and depthwise conv for ARM NEON on TVM TensorIR."""
