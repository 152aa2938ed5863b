#!/usr/bin/env bash
# ./run.sh demo              set up (cached) and run the end-to-end demo
# ./run.sh test [pytest args] set up (cached) and run the tests (the board starts on demand)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CACHE="${TIR_ARMQ_CACHE:-$HOME/.cache/tir_armq}"

usage() { echo "usage: ./run.sh demo | ./run.sh test [pytest args]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
cmd="$1"; shift
case "$cmd" in
    demo) ./scripts/setup.sh; exec "$CACHE/venv/bin/tir-armq" demo "$@" ;;
    # No path given: pytest collects pyproject's testpaths (tests/); a path narrows it, e.g.
    # ./run.sh test tests/test_board.py (a literal `tests` here would still run every test).
    test) ./scripts/setup.sh; exec "$CACHE/venv/bin/python" -m pytest -q "$@" ;;
    *) usage ;;
esac
