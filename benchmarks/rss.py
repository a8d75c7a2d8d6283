"""Run ``memctl`` in a child process and read its own peak RSS.

Linux keeps a process's high-water RSS across exec (the forked copy of the parent counts: exec
records the old memory map's high-water mark), so a child forked from a large benchmark process
reports at least the parent's size. The child is therefore started by a small launcher (a bare
Python, about 10 MB), which waits for it with ``os.wait4`` and reports the child's ``ru_maxrss``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

_LAUNCHER = ("import os, subprocess, sys\n"
             "p = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1], 'wb'))\n"
             "_, status, usage = os.wait4(p.pid, 0)\n"
             "sys.stderr.write(f'\\nmaxrss_kb={usage.ru_maxrss}\\n')\n"
             "sys.exit(os.waitstatus_to_exitcode(status))\n")


def run_memctl(args: list[str]) -> tuple[dict, float, float, int, str]:
    """``memctl ARGS --json``: (its JSON document or {}, wall seconds, peak RSS MB, exit code, stderr)."""
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile() as out:
        proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, out.name, sys.executable, "-m", "memctl",
                               *args, "--json"], stderr=subprocess.PIPE, check=False)
        wall = time.perf_counter() - started
        err = proc.stderr.decode(errors="replace")
        rss_kb = int(err.rsplit("maxrss_kb=", 1)[1].split()[0])
        body = open(out.name, "rb").read()
    doc = json.loads(body) if body.strip() else {}
    return doc, wall, rss_kb / 1024, proc.returncode, err.rsplit("\nmaxrss_kb=", 1)[0]
