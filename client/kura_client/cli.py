"""``kura-upload``: send files and folders into a Kura project.

    export KURA_URL=https://kura.example.org KURA_TOKEN=kura_…
    kura-upload --project 12 --record 34 --wait scans/ notes.txt

Large files (over 8 MiB) go one at a time, ``--workers`` parts of each in parallel; small
files go ``--jobs`` at a time, in batches, one PUT each (client/kura_client/small.py).
A file Kura already holds (same name, size and SHA-256 in the project and record, and
verified) is not sent again.

Exit status: 0 all sent (and, with --wait, verified); 1 any failure, said in one line on
stderr (the files that could be sent are sent); 2 a usage error; 3 a checksum did not
match; 130 interrupted (run the same command again to resume).

    kura-upload publish 34

publishes a new version of record 34 (its PM and data managers): Kura freezes its metadata
and the files a curator has opened beyond the project, and prints the version's number,
DOI (``-`` without one), DOI state and page, tab-separated. (To upload a file named
``publish``, write ``./publish``.)
"""

import argparse
import hashlib
import os
import sys
import threading
import time
from pathlib import Path

from . import __version__
from .api import KuraApi, KuraError
from .small import SMALL_MAX, SmallFiles, is_small
from .upload import Settings, State, Uploader, files_to_upload, wait_for_verification

TIERS = ["non_shared", "shared", "embargoed", "public"]
EXIT_MISMATCH = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kura-upload",
        description="Upload files, or whole folders (recursively), into a Kura project."
        " Files Kura already holds (same name, size and SHA-256, verified) are skipped, so"
        " running the same command again sends only what is missing.",
        epilog="The token is best given as KURA_TOKEN: a command line is visible to others."
        " Busy answers (429, 502, 503, 504) are tried again after Retry-After; a full disk"
        " (507) and refusals (4xx) are not. `kura-upload publish RECORD` publishes a version"
        " of a record (see `kura-upload publish --help`); to upload a file named publish,"
        " write ./publish.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files and folders to upload")
    _connection_arguments(parser)
    parser.add_argument("--project", type=int, required=True, help="project id")
    parser.add_argument("--record", type=int, help="DMP record id the files belong to")
    parser.add_argument("--tier", choices=TIERS, default="non_shared", help="access tier")
    parser.add_argument("--available-date", help="embargo end (YYYY-MM-DD), for --tier embargoed")
    parser.add_argument(
        "--reason",
        default="",
        help="why the files should be opened, for a tier a curator reviews (public, embargoed)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=4,
        help=f"small files (up to {SMALL_MAX // 1024**2} MiB) sent at once, each with one PUT,"
        " started and completed in batches (default 4)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="parts of one large file sent in parallel; large files go one at a time (default 4)",
    )
    parser.add_argument(
        "--separator",
        default="__",
        help="joins the folders of a file's relative path into its name (default __)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        help="state file for resuming (default: per server and project in ~/.cache/kura-upload)",
    )
    parser.add_argument(
        "--restart", action="store_true", help="forget earlier interrupted uploads of these files"
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait until Kura has verified every checksum"
    )
    parser.add_argument(
        "--wait-timeout", type=float, default=3600, help="seconds to wait with --wait (3600)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=5,
        help="further attempts after a network error or a busy server (default 5)",
    )
    parser.add_argument("--stop-after-parts", type=int, help=argparse.SUPPRESS)  # for tests
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--version", action="version", version=f"kura-upload {__version__}")
    return parser


def _default_state(url: str, project: int) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(f"{url.rstrip('/')}|{project}".encode()).hexdigest()[:16]
    return cache / "kura-upload" / f"state-{key}.json"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class Progress:
    """Bytes done / total, per file and overall, on stderr (redrawn on a terminal)."""

    def __init__(self, total: int, count: int, quiet: bool):
        self.total, self.count, self.quiet = total, count, quiet
        self.done = 0
        self.file_done_bytes = 0
        self.index = 0
        self.current = None
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()
        self.last_draw = 0.0
        self.last_tenth = -1
        self.failures: list = []

    def _write(self, line: str, final: bool = False) -> None:
        if self.quiet:
            return
        if self.tty:
            sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
        elif final:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def _line(self) -> str:
        name = self.current.name if self.current else ""
        size = self.current.size if self.current else 0
        return (
            f"[{self.index}/{self.count}] {name}: {_size(self.file_done_bytes)} / {_size(size)}"
            f" — total {_size(self.done)} / {_size(self.total)}"
        )

    def start_file(self, local) -> None:
        with self.lock:
            self.index += 1
            self.current = local
            self.file_done_bytes = 0
            self._write(self._line())

    def skip_file(self, local, how: str = "sent earlier") -> None:
        with self.lock:
            self.index += 1
            self.done += local.size
            self._write(f"[{self.index}/{self.count}] {local.name}: {how}", final=True)

    def file_sent(self, local) -> None:
        """A small file, sent whole (several are in flight at once: one line each)."""
        with self.lock:
            self.index += 1
            self.done += local.size
            self._write(
                f"[{self.index}/{self.count}] {local.name}: sent ({_size(local.size)})"
                f" — total {_size(self.done)} / {_size(self.total)}",
                final=True,
            )

    def file_failed(self, local, message: str) -> None:
        """Counted now; said at the end (so that one failure stays one line)."""
        with self.lock:
            self.index += 1
            self.failures.append((local, message))

    def add(self, local, size: int) -> None:
        with self.lock:
            self.done += size
            self.file_done_bytes += size
            now = time.monotonic()
            tenth = self.done * 10 // max(self.total, 1)
            if self.tty and now - self.last_draw > 0.2:
                self.last_draw = now
                self._write(self._line())
            elif not self.tty and tenth != self.last_tenth:
                self.last_tenth = tenth
                self._write(self._line(), final=True)

    def file_done(self, local) -> None:
        with self.lock:
            self._write(
                f"[{self.index}/{self.count}] {local.name}: sent ({_size(local.size)})", final=True
            )

    def verifying(self, verified: int, count: int) -> None:
        with self.lock:
            self._write(
                f"verifying checksums: {verified} / {count}",
                final=not self.tty or verified == count,
            )

    def say(self, line: str) -> None:
        if not self.quiet:
            with self.lock:
                self._write(line, final=True)


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=os.environ.get("KURA_URL"), help="Kura's address ($KURA_URL)"
    )
    parser.add_argument(
        "--token", default=os.environ.get("KURA_TOKEN"), help="a personal API token ($KURA_TOKEN)"
    )


def _publish_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kura-upload publish",
        description="Publish a new version of a DMP record's dataset (the project's PM and"
        " data managers): Kura freezes its metadata and the files a curator has opened"
        " beyond the project, with a DOI where it registers them. Prints the version's"
        " number, DOI (- without one), DOI state and page, tab-separated.",
    )
    parser.add_argument("record", type=int, metavar="RECORD", help="DMP record id")
    _connection_arguments(parser)
    parser.add_argument(
        "--retries",
        type=int,
        default=5,
        help="further attempts after a network error or a busy server (default 5)",
    )
    return parser


def publish(argv: list[str]) -> int:
    """``kura-upload publish RECORD``: one request, one line out."""
    parser = _publish_parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give Kura's address with --url or KURA_URL")
    if not args.token:
        parser.error("give a personal API token with --token or KURA_TOKEN")
    if args.retries < 0:
        parser.error("--retries must be 0 or more")
    try:
        version = KuraApi(args.url, args.token, retries=args.retries).version_publish(args.record)
    except KuraError as exc:
        print(f"kura-upload: error: {exc}", file=sys.stderr)
        return exc.exit_code
    fields = [version["number"], version["doi"] or "-", version["doi_state"], version["url"]]
    print("\t".join(map(str, fields)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["publish"]:
        return publish(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give Kura's address with --url or KURA_URL")
    if not args.token:
        parser.error("give a personal API token with --token or KURA_TOKEN")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.retries < 0:
        parser.error("--retries must be 0 or more")
    try:
        return _run(args)
    except KuraError as exc:
        print(f"kura-upload: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kura-upload: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _send(api, settings, state, progress, uploader, locals_, jobs: int) -> list[dict]:
    """Large files one at a time (parts in parallel), then small files ``jobs`` at a time;
    answers the result of every file not failed, in the order given."""
    large = [local for local in locals_ if not is_small(local)]
    small = [local for local in locals_ if is_small(local)]
    results = {local.path: uploader.upload(local) for local in large}
    if small:
        sender = SmallFiles(api, settings, state, progress, uploader.counters, jobs)
        try:
            sent = sender.send(small)
        except KuraError as exc:
            if exc.status != 404:
                raise
            # A Kura without batch uploads: every file on its own, as before.
            sent = []
            for local in small:
                results[local.path] = uploader.upload(local)
        for item in sent:
            if item.result is not None:
                results[item.local.path] = item.result
        for local in sender.multipart:
            results[local.path] = uploader.upload(local)
    return [results[local.path] for local in locals_ if local.path in results]


def _run(args) -> int:
    api = KuraApi(args.url, args.token, retries=args.retries)
    state_path = (args.state or _default_state(args.url, args.project)).expanduser().resolve()
    state = State(state_path)
    locals_ = files_to_upload(args.paths, args.separator, skip={state_path})
    if args.restart:
        state.forget(locals_)
    empty = [local for local in locals_ if local.size == 0]
    for local in empty:
        print(
            f"kura-upload: skipped empty file {local.path} (Kura keeps no empty files)",
            file=sys.stderr,
        )
    locals_ = [local for local in locals_ if local.size > 0]
    if not locals_:
        raise KuraError("nothing to upload")
    progress = Progress(sum(local.size for local in locals_), len(locals_), args.quiet)
    settings = Settings(
        project=args.project,
        record=args.record,
        tier=args.tier,
        available_date=args.available_date,
        reason=args.reason,
        workers=args.workers,
        stop_after_parts=args.stop_after_parts,
    )
    uploader = Uploader(api, settings, state, progress)
    try:
        results = _send(api, settings, state, progress, uploader, locals_, args.jobs)
    finally:
        uploader.close()
    counters = uploader.counters
    failures = progress.failures
    if len(failures) == 1 and not results:
        raise KuraError(failures[0][1])  # nothing was sent: the one reason, in one line
    progress.say(
        f"sent {len(results) - counters.files_held} files: parts_sent={counters.parts_sent}"
        f" parts_already_stored={counters.parts_skipped} bytes_sent={counters.bytes_sent}"
        f" already_in_kura={counters.files_held} failed={len(failures)}"
    )
    exit_code = 0
    if args.wait:
        final = wait_for_verification(
            api, [r["object_id"] for r in results], args.wait_timeout, progress
        )
        for result in results:
            body = final[result["object_id"]]
            result["checksum_state"] = body["checksum_state"]
            result["server_sha256"] = body.get("sha256") or ""
            if body["checksum_state"] != "verified":
                exit_code = EXIT_MISMATCH
    for result in results:
        print(
            "\t".join(
                [
                    str(result["object_id"]),
                    result.get("checksum_state") or "pending",
                    result.get("server_sha256") or result["sha256"],
                    result["name"],
                ]
            )
        )
    failed_paths = {local.path for local, _message in failures}
    # Every file sent is in Kura now: nothing left to resume. A failed one keeps its entry,
    # so that the next run aborts its unfinished upload before starting it again.
    state.forget([local for local in locals_ if local.path not in failed_paths])
    if failures:
        if len(failures) > 1:
            for local, message in failures:
                progress.say(f"failed: {local.name}: {message}")
        first = failures[0][1]
        more = f" ({len(failures)} of {len(locals_)} files failed)" if len(failures) > 1 else ""
        raise KuraError(f"{first}{more}")
    if exit_code:
        failed = [r for r in results if r["checksum_state"] != "verified"]
        first = failed[0]
        reason = (
            f"Kura computed {first['server_sha256']}, this machine {first['sha256']}"
            if first["server_sha256"] and first["server_sha256"] != first["sha256"]
            else "see the object in Kura"
        )
        print(
            f"kura-upload: error: checksum mismatch: {len(failed)} of {len(results)} objects"
            f" failed verification ({first['name']}: {reason}); they are quarantined",
            file=sys.stderr,
        )
    return exit_code
