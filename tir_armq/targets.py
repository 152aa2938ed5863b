"""The targets tir_armq builds for: one definition each, used by builds, tests and tuning."""

from __future__ import annotations

from dataclasses import dataclass

import tvm


@dataclass(frozen=True)
class ArmTarget:
    """An ARM board kind: the TVM target, the cross compiler that links for it, its ISA family."""

    name: str
    isa: str  # "aarch64" or "armv7": picks the intrinsic module
    mtriple: str
    mcpu: str
    cross_cc: str
    num_cores: int = 4
    extra: tuple[tuple[str, object], ...] = ()

    def tvm_target(self) -> tvm.target.Target:
        # The JSON form is the only one TVM 0.27 accepts with options; MetaSchedule needs num-cores.
        config = {
            "kind": "llvm",
            "mtriple": self.mtriple,
            "mcpu": self.mcpu,
            "mattr": ["+neon"],
            "num-cores": self.num_cores,
        }
        config.update(dict(self.extra))
        return tvm.target.Target(config)


AARCH64_A72 = ArmTarget(
    name="aarch64",
    isa="aarch64",
    mtriple="aarch64-linux-gnu",
    mcpu="cortex-a72",
    cross_cc="aarch64-linux-gnu-gcc",
)
AARCH64_A53 = ArmTarget(
    name="aarch64-a53",
    isa="aarch64",
    mtriple="aarch64-linux-gnu",
    mcpu="cortex-a53",
    cross_cc="aarch64-linux-gnu-gcc",
)
ARMV7_A7 = ArmTarget(
    name="armv7",
    isa="armv7",
    mtriple="armv7a-linux-gnueabihf",
    mcpu="cortex-a7",
    cross_cc="arm-linux-gnueabihf-gcc",
    extra=(("mfloat-abi", "hard"),),
)

TARGETS: dict[str, ArmTarget] = {t.name: t for t in (AARCH64_A72, AARCH64_A53, ARMV7_A7)}


def get_target(name: str) -> ArmTarget:
    """Look up a target by name (`aarch64`, `aarch64-a53`, `armv7`)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"target: unknown target {name!r}; known: {sorted(TARGETS)}") from None
