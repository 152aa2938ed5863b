#!/usr/bin/env bash
# Set up everything tir_armq needs, cached under ${TIR_ARMQ_CACHE:-$HOME/.cache/tir_armq}:
#   a. host apt packages: qemu-user and the aarch64/armhf cross compilers
#   b. host venv ($CACHE/venv) with this repo installed editable, [test] extras
#   c. the emulated aarch64 board ($CACHE/board): an arm64 Debian sysroot with python3.11 (private
#      APT config, host dpkg state untouched) and aarch64 wheels of numpy + the TVM runtime.
# Each step is guarded by a stamp file holding what it was built from, so a re-run takes seconds.
# Facts behind the recipe: ../shared/EMULATED_BOARD.md from the repo root (sections 1-3, pitfalls 1-3).
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TIR_ARMQ_CACHE:-$HOME/.cache/tir_armq}"
BOARD="$CACHE/board"
STAMPS="$CACHE/stamps"
LOGS="$CACHE/logs"
VENV="$CACHE/venv"
mkdir -p "$STAMPS" "$LOGS" "$BOARD"

# llvm: llvm-mc and llvm-mca for the cycle estimate. libc6-dev-armhf-cross: the armhf C library's
# headers and crt files, only a Recommends of the cross gcc (apt here installs no recommends); the
# ARMv7 harness and kernels link against it.
APT_HOST_PKGS=(qemu-user gcc-aarch64-linux-gnu g++-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-armhf-cross llvm)
SYSROOT_PKGS=(python3.11 libstdc++6)
# Guest wheels: the TVM runtime (pinned like pyproject.toml), numpy, and what the RPC server uses
# under the guest python: cloudpickle (PopenWorker) and psutil (killing workers on session timeout).
BOARD_WHEELS=(numpy apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1 cloudpickle psutil)
WHEEL_PLATFORMS=(manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64)
QEMU_CPU=cortex-a72

CURRENT_STEP=""
exec 3>&2 # the terminal's stderr, for the error report (a step's output goes to its log)
on_error() {
    local rc=$?
    trap - ERR
    {
        echo
        echo "[setup] FAILED in step '${CURRENT_STEP:-?}' (exit ${rc}) at line ${BASH_LINENO[0]}: ${BASH_COMMAND}"
        if [[ -n "${STEP_LOG:-}" && -s "${STEP_LOG}" ]]; then
            echo "[setup] last lines of ${STEP_LOG}:"
            tail -n 25 "${STEP_LOG}"
        fi
    } >&3
    exit "$rc"
}
trap on_error ERR

stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { printf '%s' "$2" >"$STAMPS/$1"; }

# run_step NAME KEY FUNCTION: run FUNCTION unless stamp NAME holds KEY (empty KEY: no stamp);
# log to $LOGS/NAME.log.
run_step() {
    local name="$1" key="$2" fn="$3" t0
    if [[ -n "$key" ]] && stamp_ok "$name" "$key"; then
        echo "[setup] $name ... cached"
        return 0
    fi
    CURRENT_STEP="$name"
    STEP_LOG="$LOGS/$name.log"
    : >"$STEP_LOG"
    printf '[setup] %s ... ' "$name"
    t0=$SECONDS
    "$fn" >>"$STEP_LOG" 2>&1
    [[ -z "$key" ]] || stamp_set "$name" "$key"
    echo "done ($((SECONDS - t0)) s)"
}

as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------- a. host apt packages
host_pkgs_missing() {
    local missing=() p
    for p in "$@"; do
        [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" == "ii"* ]] || missing+=("$p")
    done
    echo "${missing[@]:-}"
}

apt_wanted() {
    echo "${APT_HOST_PKGS[@]}"
    # Debian's python3 has no venv/ensurepip unless python3-venv is installed.
    python3 -c 'import ensurepip, venv' 2>/dev/null || echo python3-venv
}

step_apt() {
    local missing
    # shellcheck disable=SC2046
    missing=$(host_pkgs_missing $(apt_wanted))
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
}

# ---------------------------------------------------------------- b. host venv
step_venv() {
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -e "$REPO[test]"
}

# ---------------------------------------------------------------- c1. arm64 sysroot
write_apt_arm64_config() {
    local A="$BOARD/apt-arm64" key=/usr/share/keyrings/debian-archive-keyring.gpg s
    mkdir -p "$A"/state/lists/partial "$A"/cache/archives/partial
    touch "$A/state/status" # empty: apt downloads the whole dependency closure
    : >"$A/sources.list"
    for s in "http://deb.debian.org/debian bookworm main" \
             "http://deb.debian.org/debian bookworm-updates main" \
             "http://deb.debian.org/debian-security bookworm-security main"; do
        echo "deb [signed-by=$key] $s" >>"$A/sources.list"
        echo "deb-src [signed-by=$key] $s" >>"$A/sources.list"
    done
    cat >"$A/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$A/state";
Dir::State::status "$A/state/status";
Dir::Cache "$A/cache";
Dir::Etc::SourceList "$A/sources.list";
Dir::Etc::SourceParts "$A/nonexistent";
APT::Install-Recommends "false";
EOF
}

# A Raspberry Pi 4 (4 x Cortex-A72 r0p3, ARMv8.0: no dot product), to match `-cpu cortex-a72`.
# qemu-user passes the host's x86 /proc/cpuinfo through unless the -L prefix has its own (pitfall 1).
write_fake_cpuinfo() {
    local f="$1/proc/cpuinfo" i
    mkdir -p "$1/proc"
    : >"$f"
    for i in 0 1 2 3; do
        cat >>"$f" <<EOF
processor	: $i
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

EOF
    done
}

step_sysroot() {
    local tmp="$BOARD/sysroot.tmp" d
    write_apt_arm64_config
    export APT_CONFIG="$BOARD/apt-arm64/apt.conf"
    apt-get update
    apt-get install -y -d "${SYSROOT_PKGS[@]}"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    for d in "$BOARD"/apt-arm64/cache/archives/*.deb; do dpkg -x "$d" "$tmp"; done
    write_fake_cpuinfo "$tmp"
    # Debian ships no .pyc and this host sets PYTHONDONTWRITEBYTECODE: precompile once (pitfall 2).
    qemu-aarch64 -cpu "$QEMU_CPU" -L "$tmp" "$tmp/usr/bin/python3.11" -m compileall -q -j 2 \
        -x 'lib2to3/tests|test/|idlelib' "$tmp/usr/lib/python3.11" || true
    # compileall exits non-zero for the odd file it cannot compile; the check below is what matters.
    qemu-aarch64 -cpu "$QEMU_CPU" -L "$tmp" "$tmp/usr/bin/python3.11" -c \
        'import sys, json; assert sys.version_info[:2] == (3, 11); print(sys.version)'
    rm -rf "$BOARD/sysroot"
    mv "$tmp" "$BOARD/sysroot"
}

# ---------------------------------------------------------------- c2. aarch64 wheels
step_wheels() {
    local tmp="$BOARD/pyarm64.tmp" plat=() p
    for p in "${WHEEL_PLATFORMS[@]}"; do plat+=(--platform "$p"); done
    rm -rf "$tmp"
    # Several manylinux tags: pip does not expand manylinux_2_x tags given via --platform (pitfall 3).
    # pip writes the .pyc (host CPython 3.11: same bytecode magic as the guest's 3.11.2).
    "$VENV/bin/python" -m pip install --target "$tmp" "${plat[@]}" --only-binary=:all: \
        --python-version 3.11 --implementation cp "${BOARD_WHEELS[@]}"
    env -i PATH="$PATH" PYTHONPATH="$tmp" TVM_USE_RUNTIME_LIB=1 \
        qemu-aarch64 -cpu "$QEMU_CPU" -L "$BOARD/sysroot" "$BOARD/sysroot/usr/bin/python3.11" -c \
        'import numpy, tvm, cloudpickle, psutil, tvm.rpc; print(numpy.__version__, tvm.__version__)'
    rm -rf "$BOARD/pyarm64"
    mv "$tmp" "$BOARD/pyarm64"
}

# ---------------------------------------------------------------- c3. LiteRT (XNNPACK) for the guest
# The XNNPACK side of the benchmark: the aarch64 ai-edge-litert wheel and its dependencies, in their
# own target dir so the TVM guest path (pyarm64) is unchanged. numpy comes from pyarm64: a guest
# process running LiteRT uses PYTHONPATH=$BOARD/pyarm64-litert:$BOARD/pyarm64 (tir_armq/bench/litert.py).
LITERT_WHEELS=(ai-edge-litert)
step_litert() {
    local tmp="$BOARD/pyarm64-litert.tmp" plat=() p
    for p in "${WHEEL_PLATFORMS[@]}"; do plat+=(--platform "$p"); done
    rm -rf "$tmp"
    # ai-edge-litert's aarch64 wheels are tagged manylinux_2_27 (pitfall 3: list the tags).
    "$VENV/bin/python" -m pip install --target "$tmp" "${plat[@]}" --only-binary=:all: \
        --python-version 3.11 --implementation cp "${LITERT_WHEELS[@]}"
    # numpy is in pyarm64 already: drop the second copy pip pulled in as a dependency.
    rm -rf "$tmp"/numpy "$tmp"/numpy-*.dist-info "$tmp"/numpy.libs
    env -i PATH="$PATH" PYTHONPATH="$tmp:$BOARD/pyarm64" \
        qemu-aarch64 -cpu "$QEMU_CPU" -L "$BOARD/sysroot" "$BOARD/sysroot/usr/bin/python3.11" -c \
        'import numpy, ai_edge_litert.interpreter as i; print(numpy.__file__, i.__file__)'
    rm -rf "$BOARD/pyarm64-litert"
    mv "$tmp" "$BOARD/pyarm64-litert"
}

# ---------------------------------------------------------------- d. counting plugin header
# The instruction-counting TCG plugin (tir_armq/measure/insncount.c) needs qemu-plugin.h from the
# same qemu release as the host's qemu-user (7.2, plugin API v1, no glib). Debian ships no -dev
# package with it, so take it from the source package, through the board's private APT config
# (it has deb-src lines and its Sources indexes come from step c1). Only the one header is kept.
QEMU_SRC_VERSION=7.2.0
QEMU_PLUGIN_HEADER="$BOARD/qemu-src/qemu-$QEMU_SRC_VERSION/include/qemu/qemu-plugin.h"
step_qemu_plugin_header() {
    local d="$BOARD/qemu-src" orig
    mkdir -p "$d"
    export APT_CONFIG="$BOARD/apt-arm64/apt.conf"
    # The Sources index exists after step c1; refresh it only if it is missing (an older config).
    compgen -G "$BOARD/apt-arm64/state/lists/*_Sources*" >/dev/null || apt-get update
    # A stale index names a Debian revision the mirror has dropped: refresh once and retry.
    (cd "$d" && apt-get source -d qemu) || { apt-get update && (cd "$d" && apt-get source -d qemu); }
    orig=$(ls "$d"/qemu_*.orig.tar.xz | head -n 1)
    tar -C "$d" -xJf "$orig" "qemu-$QEMU_SRC_VERSION/include/qemu/qemu-plugin.h"
    grep -q 'QEMU_PLUGIN_VERSION 1' "$QEMU_PLUGIN_HEADER"
    # The 24 MB tarballs are not needed once the header is out.
    rm -f "$d"/qemu_*.orig.tar.xz "$d"/qemu_*.debian.tar.xz "$d"/qemu_*.dsc
}

hash_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

T0=$SECONDS
# shellcheck disable=SC2046
if [[ -z "$(host_pkgs_missing $(apt_wanted))" ]]; then
    echo "[setup] host-apt ... present"
else
    run_step host-apt "" step_apt
fi
run_step host-venv "$(hash_of "$REPO/pyproject.toml")|$REPO" step_venv
run_step board-sysroot "v1|${SYSROOT_PKGS[*]}|$QEMU_CPU" step_sysroot
run_step board-wheels "v1|${BOARD_WHEELS[*]}|$(cat "$STAMPS/board-sysroot")" step_wheels
run_step board-litert "v1|${LITERT_WHEELS[*]}|$(cat "$STAMPS/board-wheels")" step_litert
# Re-run when the header is gone even if the stamp says done (the qemu-src folder may be deleted).
[[ -f "$QEMU_PLUGIN_HEADER" ]] || rm -f "$STAMPS/qemu-plugin-header"
run_step qemu-plugin-header "v1|$QEMU_SRC_VERSION|$(cat "$STAMPS/board-sysroot")" step_qemu_plugin_header
echo "[setup] ready in $((SECONDS - T0)) s: $CACHE"
