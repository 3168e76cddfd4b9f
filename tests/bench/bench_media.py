"""Media benchmark (issue 15): upload and download throughput (MiB/s) of a 20 MiB file through
`modula serve` on each storage backend, beside a plain file copy on the same disk, and the server's
peak resident memory during a 100 MiB upload (it must not hold the file: the peak over the idle
RSS should be a few MiB, not 100).

For each backend (`database` and `filesystem` on SQLite; `database` on PostgreSQL too with
--postgres-url) it starts `modula serve` on a free 127.0.0.1 port with a fresh database, uploads
--rounds different 20 MiB files (a GraphQL multipart request streamed from disk by httpx, bearer
token) and downloads each from its URL, and takes the median; the floor is `shutil.copyfile` of the
same file and reading it back, in the same run (for s3: boto3's own upload_file / download_fileobj
to the same moto server, what `aws s3 cp` does). RSS is sampled from /proc every 10 ms.

    python tests/bench/bench_media.py
    python tests/bench/bench_media.py --postgres-url postgresql://postgres@127.0.0.1:5432/test --s3

How to read it: quote the ratios (backend MiB/s / copy MiB/s), not the absolute numbers, which
drift on a shared machine; the upload includes hashing, sniffing and the database or rename.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing

import peer_servers  # noqa: E402
from modula_testing import create_test_database, drop_test_database  # noqa: E402

MIB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"  # sniffed as video/mp4
UPLOAD = "mutation($file: Upload!) { uploadMedia(file: $file) { id url size } }"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=20)
    parser.add_argument("--rss-mib", type=int, default=100, help="the upload whose peak RSS is measured")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-url")
    parser.add_argument("--s3", action="store_true", help="also the s3 backend, on a moto server it starts")
    return parser.parse_args(argv)


def make_file(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        out.write(MP4_HEAD)
        left = size - len(MP4_HEAD)
        while left > 0:
            piece = os.urandom(min(left, 4 * MIB))
            out.write(piece)
            left -= len(piece)
    return path


def floor(files: list[Path], folder: Path) -> tuple[float, float]:
    """MiB/s of copying each file (fsync'd, as the filesystem backend does) and of reading it back."""
    writes, reads = [], []
    for source in files:
        target = folder / f"copy-{uuid.uuid4().hex}"
        start = time.perf_counter()
        shutil.copyfile(source, target)
        with target.open("rb") as written:
            os.fsync(written.fileno())
        writes.append(source.stat().st_size / MIB / (time.perf_counter() - start))
        start = time.perf_counter()
        with target.open("rb") as back:
            while back.read(MIB):
                pass
        reads.append(source.stat().st_size / MIB / (time.perf_counter() - start))
        target.unlink()
    return statistics.median(writes), statistics.median(reads)


def upload(base: str, token: str, path: Path) -> tuple[float, dict]:
    data = {"operations": json.dumps({"query": UPLOAD, "variables": {"file": None}}),
            "map": json.dumps({"0": ["variables.file"]})}
    with path.open("rb") as source, httpx.Client(timeout=600, headers={"authorization": f"Bearer {token}"}) as client:
        start = time.perf_counter()
        response = client.post(f"{base}/graphql", data=data, files={"0": (path.name, source, "video/mp4")})
        elapsed = time.perf_counter() - start
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:300]}")
    return path.stat().st_size / MIB / elapsed, body["data"]["uploadMedia"]


def download(base: str, token: str, url: str, size: int) -> float:
    got = 0
    with httpx.Client(timeout=600, headers={"authorization": f"Bearer {token}"}) as client:
        start = time.perf_counter()
        with client.stream("GET", base + url) as response:
            for piece in response.iter_bytes(MIB):
                got += len(piece)
        elapsed = time.perf_counter() - start
    if got != size:
        raise RuntimeError(f"downloaded {got} bytes of {size}")
    return size / MIB / elapsed


def peak_rss_during(pid: int, work) -> tuple[int, int]:
    """(RSS before, peak RSS while `work()` runs), in bytes."""
    before = peer_servers.rss_bytes(pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], peer_servers.rss_bytes(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return before, peak[0]


def start_moto(processes) -> str:
    """moto's S3 server on a free port (the s3 backend's store here); its endpoint, with bucket `bench`."""
    import boto3

    port = peer_servers.free_port()
    process = processes.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              cwd=Path.cwd())
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError("moto's server did not start") from None
            time.sleep(0.05)
    s3_client(endpoint).create_bucket(Bucket="bench")
    return endpoint


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench")


def s3_floor(endpoint: str, files: list[Path]) -> tuple[float, float]:
    """MiB/s of boto3's own upload_file and download_fileobj (what `aws s3 cp` does) to the same store."""
    client = s3_client(endpoint)
    ups, downs = [], []
    for path in files:
        start = time.perf_counter()
        client.upload_file(str(path), "bench", f"floor/{path.name}")
        ups.append(path.stat().st_size / MIB / (time.perf_counter() - start))
        start = time.perf_counter()
        with open(os.devnull, "wb") as sink:
            client.download_fileobj("bench", f"floor/{path.name}", sink)
        downs.append(path.stat().st_size / MIB / (time.perf_counter() - start))
    return statistics.median(ups), statistics.median(downs)


def run_backend(processes, name: str, folder: Path, database_url: str, storage: str, files: list[Path],
                big: Path, extra_env: dict | None = None) -> dict:
    folder.mkdir(parents=True)
    peer_servers.modula("migrate", "--database-url", database_url, cwd=folder)
    peer_servers.modula("users", "create", "--database-url", database_url, "--username", "bench", "--email",
                        "bench@example.com", "--admin", cwd=folder, stdin=peer_servers.ADMIN_PASSWORD + "\n")
    port = peer_servers.free_port()
    env = {"MODULA_MEDIA_STORAGE": storage, "MODULA_MEDIA_DIR": str(folder / "media"),
           "MODULA_UPLOAD_DIR": str(folder / "uploads"), "MODULA_MAX_UPLOAD_BYTES": str(big.stat().st_size + MIB),
           **(extra_env or {})}
    process = processes.start(name, [sys.executable, "-m", "modula.cli", "serve", "--host", "127.0.0.1", "--port",
                                     str(port), "--database-url", database_url, "--plugins-dir",
                                     str(folder / "plugins")], cwd=folder, env=env)
    base = f"http://127.0.0.1:{port}"
    peer_servers.wait_ready(processes, name, process, base + "/graphql")
    token = peer_servers.api_token(base + "/graphql")
    ups, downs = [], []
    for path in files:
        rate, media = upload(base, token, path)
        ups.append(rate)
        downs.append(download(base, token, media["url"], media["size"]))
    before, peak = peak_rss_during(process.pid, lambda: upload(base, token, big))
    return {"upload": statistics.median(ups), "download": statistics.median(downs), "rss_before": before,
            "rss_peak": peak}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    peer_servers.clean_up_on_signals()
    with tempfile.TemporaryDirectory(prefix="bench-media-") as temporary:
        root = Path(temporary)
        files = [make_file(root / f"clip-{n}.mp4", args.size_mib * MIB) for n in range(args.rounds)]
        copy_write, copy_read = floor(files, root)
        results = {}
        created = []
        try:
            with peer_servers.Processes(root) as processes, peer_servers.Processes(root) as stores:
                backends = [("SQLite, database", f"sqlite:///{root / 'db1.sqlite'}", "database"),
                            ("SQLite, filesystem", f"sqlite:///{root / 'db2.sqlite'}", "filesystem")]
                if args.postgres_url:
                    name = f"bench_media_{uuid.uuid4().hex[:8]}"
                    url = asyncio.run(create_test_database(args.postgres_url, name))
                    created.append(name)
                    backends.append(("PostgreSQL, database", url, "database"))
                extra: dict[str, dict] = {}
                if args.s3:
                    endpoint = start_moto(stores)
                    s3_copy = s3_floor(endpoint, files)
                    backends.append(("SQLite, s3 (moto)", f"sqlite:///{root / 'db3.sqlite'}", "s3"))
                    extra["s3"] = {"MODULA_S3_BUCKET": "bench", "MODULA_S3_ENDPOINT_URL": endpoint,
                                   "MODULA_S3_REGION": "us-east-1", "MODULA_S3_ACCESS_KEY_ID": "bench",
                                   "MODULA_S3_SECRET_ACCESS_KEY": "bench"}
                for label, url, storage in backends:
                    big = make_file(root / "big.mp4", args.rss_mib * MIB)  # new bytes: dedup would skip the work
                    fresh = [make_file(root / f"r-{n}.mp4", args.size_mib * MIB) for n in range(args.rounds)]
                    results[label] = run_backend(processes, label, root / label.split(" (")[0].replace(", ", "-").lower(),
                                                 url, storage, fresh, big, extra.get(storage))
                    processes.stop_all()
        finally:
            for name in created:
                asyncio.run(drop_test_database(args.postgres_url, name))

    print(f"{args.size_mib} MiB file, median of {args.rounds}; plain copy (fsync'd) {copy_write:.0f} MiB/s, "
          f"read back {copy_read:.0f} MiB/s")
    if args.s3:
        print(f"boto3 upload_file / download_fileobj to the same moto server (`aws s3 cp`): {s3_copy[0]:.0f} / "
              f"{s3_copy[1]:.0f} MiB/s; the s3 row's ratios are against those")
    print(f"| backend | upload MiB/s | / copy | download MiB/s | / read | RSS idle → peak during a {args.rss_mib} MiB upload |")
    print("|---|---:|---:|---:|---:|---|")
    for label, r in results.items():
        floor_write, floor_read = s3_copy if "s3" in label else (copy_write, copy_read)
        r = {**r, "copy_write": floor_write, "copy_read": floor_read}
        print(f"| {label} | {r['upload']:.0f} | {r['upload'] / r['copy_write']:.2f} | {r['download']:.0f} | "
              f"{r['download'] / r['copy_read']:.2f} | {r['rss_before'] / MIB:.0f} → {r['rss_peak'] / MIB:.0f} MiB "
              f"(+{(r['rss_peak'] - r['rss_before']) / MIB:.1f}) |")


if __name__ == "__main__":
    main()
