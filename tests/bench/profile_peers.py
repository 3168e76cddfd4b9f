"""Where a request's time goes: py-spy samples `modula serve` (SQLite, one process, the peer
benchmark's data) while wrk sends one operation (q2 by default), and the samples are summed by
package and by function (own time) as a share of the server's samples.

Run from the repository root with the venv active (needs `pip install py-spy` and wrk; py-spy
must be allowed to read another process, as root or with ptrace permitted)::

    python tests/bench/profile_peers.py                 # q2, 10 s
    python tests/bench/profile_peers.py --query q3 --seconds 20

Profiles are shares of one process's samples, so they compare across machines better than times do.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_data  # noqa: E402
import peer_load  # noqa: E402
import peer_servers  # noqa: E402


def package_of(filename: str) -> str:
    """'modula.db', 'graphql', 'asyncio', ... for a sampled frame's file."""
    path = filename.replace("\\", "/")
    if "/modula/" in path:
        rest = path.split("/modula/", 1)[1].split("/")
        return "modula." + rest[0].removesuffix(".py") if len(rest) > 1 or rest[0] else "modula"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    if "/lib/python3" in path:
        return "stdlib." + path.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    return path.rsplit("/", 1)[-1]


def summarise(collapsed: Path, top: int) -> str:
    """Own time per package and per function from py-spy's collapsed stacks ("a;b;c count")."""
    packages: collections.Counter = collections.Counter()
    functions: collections.Counter = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        leaf = stack.split(";")[-1]  # "function (file:line)"
        name, _, where = leaf.partition(" (")
        filename = where.rsplit(":", 1)[0]
        packages[package_of(filename)] += samples
        functions[f"{name} ({package_of(filename)})"] += samples
    lines = [f"{total} samples of the server's threads (idle waiting excluded)", "", "own time by package:"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in packages.most_common(top)]
    lines += ["", "own time by function:"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in functions.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="q2", choices=["q1", "q2", "q3"])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL (Python's CPU)")
    args = parser.parse_args()
    if not shutil.which("py-spy") or not peer_load.have_wrk():
        print("needs py-spy (pip install py-spy) and wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="modula-profile-") as tmp:
        folder = Path(tmp) / "modula"
        database = folder / "modula.db"
        peer_servers.prepare_modula(folder, f"sqlite:///{database}")
        peer_data.load_sqlite(str(database), *peer_data.generate())
        with peer_servers.Processes(Path(tmp)) as processes:
            server = peer_servers.start_modula(processes, "modula", folder, f"sqlite:///{database}")
            server.check()
            peer_load.run_wrk(server, args.query, 2, args.connections)  # warm-up
            collapsed = Path(tmp) / "profile.txt"
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--duration", str(args.seconds),
                                    "--format", "raw", "--output", str(collapsed), "--nonblocking", "--full-filenames",
                                    *(["--gil"] if args.gil else [])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            load = threading.Thread(target=peer_load.run_wrk, args=(server, args.query, args.seconds, args.connections))
            load.start()
            load.join()
            _, errors = spy.communicate(timeout=args.seconds + 60)
            if spy.returncode != 0:
                print(f"py-spy failed: {errors}", file=sys.stderr)
                return 1
        print(f"{args.query}, {args.seconds} s of wrk with {args.connections} connections, Modula on SQLite\n")
        print(summarise(collapsed, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
