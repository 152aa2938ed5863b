"""The targets tir_armq builds for: one definition each, used by builds, tests and tuning."""

from __future__ import annotations

from dataclasses import dataclass, replace

import tvm


MAX_THREADS = 8  # the counting plugin's per-thread slots (and more cores than the boards have)


@dataclass(frozen=True)
class ArmTarget:
    """An ARM board kind: the TVM target, the cross compiler that links for it, its ISA family, and
    the threads its kernels run on (TVM's `num-cores`: the schedules' parallel loops follow it, and
    tuning records are kept apart per thread count)."""

    name: str
    isa: str  # "aarch64" or "armv7": picks the intrinsic module
    mtriple: str
    mcpu: str
    cross_cc: str
    threads: int = 1
    extra: tuple[tuple[str, object], ...] = ()

    def with_threads(self, threads: int) -> "ArmTarget":
        """This board with kernels on `threads` threads."""
        if not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
            raise ValueError(f"threads: expected 1..{MAX_THREADS}, got {threads!r}")
        return replace(self, threads=threads)

    @property
    def db_name(self) -> str:
        """Its folder in a tuning database: one per target and thread count."""
        return self.name if self.threads == 1 else f"{self.name}-{self.threads}threads"

    def tvm_target(self) -> tvm.target.Target:
        # The JSON form is the only one TVM 0.27 accepts with options.
        config = {
            "kind": "llvm",
            "mtriple": self.mtriple,
            "mcpu": self.mcpu,
            "mattr": ["+neon"],
            "num-cores": self.threads,
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
