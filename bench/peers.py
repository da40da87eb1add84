"""Reference peers live in throwaway virtualenvs that the bench builds, never in the project.

A peer (the reference ``dpone`` from PyPI, ``dagster-sling``, ``dlt``, ``sling``) is a
benchmark baseline, not a dependency: installing it into the project's ``.venv`` would
change what the project's own numbers measure (other versions of shared packages) and
what the project ships. So each peer gets its own venv under ``--peers-dir`` (default
``/tmp/dpone-bench-peers/<name>``), pip-installs one pinned requirement there, and the
bench runs the peer through that venv's interpreter or executable.

A venv is reused only if it holds the same pin (a marker file written after a
successful install); with ``install=False`` (``--quick``, CI) nothing is ever
installed and the caller gets ``None`` and a printable ``skipped: <why>``.

    .venv/bin/python bench/peers.py --install dpone dlt   # build venvs ahead of a bench run
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PEERS_DIR = Path("/tmp/dpone-bench-peers")
MARKER = "dpone-bench-pin.txt"


@dataclass(frozen=True)
class Peer:
    """One pinned reference: what pip installs and which of the venv's programs runs it."""

    name: str
    pin: str
    #: The program the bench runs, a glob relative to the venv (one match).
    program: str = "bin/python"
    #: Run once after installing: the peer's program must start before a bench times it.
    warm_up: tuple[str, ...] = ()
    what: str = ""


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer(
            "dagster-sling",
            "dagster-sling==0.29.27",  # pins dagster 1.13.27, the project's Dagster
            what="Dagster's Sling integration (@sling_assets)",
        ),
        Peer("dpone", "dpone==0.88.0", what="the reference dpone on PyPI"),
        Peer(
            "dlt",
            "dlt[sqlalchemy,postgres]==1.31.0",
            what="dlt: sql_database source, sqlalchemy/postgres destinations",
        ),
        Peer(
            "sling",
            # The Go binary inside a wheel: the ``sling`` package itself downloads the
            # binary from GitHub on first use, which a machine without that access cannot.
            "sling-linux-amd64==1.4.11",
            program="lib/python*/site-packages/sling_linux_amd64/bin/sling-linux-amd64",
            warm_up=("--version",),
            what="the Sling CLI (its Go binary, from the sling-linux-amd64 wheel)",
        ),
    )
}


def venv_dir(name: str, peers_dir: Path = DEFAULT_PEERS_DIR) -> Path:
    return Path(peers_dir) / name


def peer_python(name: str, peers_dir: Path = DEFAULT_PEERS_DIR) -> Path:
    return venv_dir(name, peers_dir) / "bin" / "python"


def _ready(peer: Peer, venv: Path) -> bool:
    marker = venv / MARKER
    return marker.exists() and marker.read_text().strip() == peer.pin


def _program(peer: Peer, venv: Path) -> Path | None:
    found = sorted(venv.glob(peer.program))
    return found[0] if found else None


def ensure_peer(
    name: str, peers_dir: Path = DEFAULT_PEERS_DIR, *, install: bool
) -> tuple[str | None, str]:
    """The peer's program (absolute path) and a note; ``(None, "skipped: <why>")`` if absent.

    ``install=False`` only ever looks: building a venv takes minutes, which CI's quick
    run must never spend.
    """
    peer = PEERS[name]
    venv = venv_dir(name, peers_dir)
    program = _program(peer, venv)
    if _ready(peer, venv) and program is not None:
        return str(program), f"{peer.pin} from {venv}"
    if not install:
        # --peers (run_all.py) or --install builds it; that takes minutes, --quick never does.
        return None, f"skipped: {peer.pin} not installed in {venv}"
    if venv.exists():
        shutil.rmtree(venv)  # another pin, or a half-finished install
    print(f"creating the throwaway peer venv {venv} ({peer.pin}) ...", flush=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)
    if made.returncode != 0:
        return None, f"skipped: could not create the venv {venv}"
    log = venv / "pip-install.log"  # pip's output is long and rarely interesting
    with log.open("w") as out:
        pip = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", peer.pin],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    program = _program(peer, venv)
    if pip.returncode != 0 or program is None:
        return None, f"skipped: pip install {peer.pin} failed (see {log})"
    if peer.warm_up:
        warm = subprocess.run([str(program), *peer.warm_up], capture_output=True, check=False)
        if warm.returncode != 0:
            return None, f"skipped: `{program.name} {' '.join(peer.warm_up)}` failed"
    (venv / MARKER).write_text(peer.pin + "\n")
    return str(program), f"{peer.pin} from {venv}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(PEERS), help=f"of {', '.join(PEERS)}")
    parser.add_argument("--peers-dir", type=Path, default=DEFAULT_PEERS_DIR)
    parser.add_argument("--install", action="store_true", help="build missing venvs")
    args = parser.parse_args()
    missing = 0
    for name in args.names:
        program, note = ensure_peer(name, args.peers_dir, install=args.install)
        print(f"{name}: {program or '-'} ({note})", flush=True)
        missing += program is None
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
