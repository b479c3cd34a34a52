"""The line-JSON protocol of the Python baseline servers (bench/_common.ts LineServer): one JSON object per line
on stdout, and the peak RSS each reports when it quits. Imported by bench/torch_train.py, bench/paddle_train.py
and bench/torch_conv.py (each run as a script, so this folder is on sys.path); standard library only, since
each runs in a different interpreter (the torch venv, the paddle venv)."""
import json
import sys


def reply(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def peak_rss():
    """VmHWM of this process: getrusage's ru_maxrss would include the RSS of the (Deno) parent it was forked from."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None
