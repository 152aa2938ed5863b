"""tir_armq."""
