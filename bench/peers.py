"""The peer servers' own venv, `.venv-peers/`, made on first use from bench/peers-constraints.txt.

Peers never share the project venv, so their pins (moto 5.2.5, ministack 1.5.33 and what they
pull in) cannot disturb ours. `python -m bench.peers` creates it and prints the versions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench import REPO

VENV = REPO / ".venv-peers"
CONSTRAINTS = REPO / "bench" / "peers-constraints.txt"
STAMP = VENV / ".installed"
PACKAGES = ("moto", "ministack")


def python() -> Path:
    return VENV / "bin" / "python"


def executable(name: str) -> Path:
    return VENV / "bin" / name


def ensure() -> None:
    """Create or refresh .venv-peers when the constraints file is newer than the last install."""
    if STAMP.exists() and STAMP.stat().st_mtime >= CONSTRAINTS.stat().st_mtime:
        return
    base = shutil.which("python3.11") or sys.executable
    print(f"bench: installing peers into {VENV} from {CONSTRAINTS.name} ...", file=sys.stderr)
    if not python().exists():
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   check=True)
    # --no-compile: the peers import a fraction of what they pull in (cfn-lint, sympy, ...);
    # each module is compiled on first import instead, which halves the install's time.
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "--no-compile", "-r",
                    str(CONSTRAINTS)], check=True)
    STAMP.touch()


def versions() -> dict[str, str]:
    script = ("import importlib.metadata as m, json; "
              f"print(json.dumps({{p: m.version(p) for p in {PACKAGES!r}}}))")
    out = subprocess.run([str(python()), "-c", script], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    ensure()
    print(json.dumps(versions()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
