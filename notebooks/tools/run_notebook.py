"""Execute a notebook headless with the project's Deno kernel (nbclient) and fail on any error output.

    .venv/bin/python notebooks/tools/run_notebook.py NOTEBOOK.ipynb [--out EXECUTED.ipynb]
        [--report REPORT.json] [--timeout SECONDS] [--kernel NAME] [--trust]

Used by the notebook tests (tests/notebooks/) and `deno task nb:check`; a user can run it too. The
kernelspec is found through JUPYTER_PATH, which this script points at notebooks/ (the committed
kernelspec notebooks/kernels/pixel-contrast-deno) unless the caller already set it; runtime files go to a
temporary folder, so nothing is written into the user's home.

Exit status: 0 when every cell ran and no output is an error; 1 when a cell failed (its error is printed
with the cell's index and first line), a cell timed out, or the kernel died; 2 for bad arguments.
The report (JSON) lists per cell: index, first source line, seconds, and each output's type and MIME
types, so tests can assert what a notebook displayed.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_TYPES = {"stream", "display_data", "update_display_data", "execute_result", "error"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook")
    ap.add_argument("--out", help="write the executed notebook here")
    ap.add_argument("--report", help="write a JSON report of the cells and their outputs here")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per cell (default 600)")
    ap.add_argument("--kernel", help="kernel name (default: the notebook's kernelspec)")
    ap.add_argument("--trust", action="store_true", help="sign the executed copy (trusted in JupyterLab)")
    args = ap.parse_args()

    src = Path(args.notebook)
    if not src.is_file():
        print(f"run_notebook: no such notebook: {src}", file=sys.stderr)
        return 2
    if args.trust and not args.out:
        print("run_notebook: --trust needs --out (the executed copy is what gets signed)", file=sys.stderr)
        return 2

    paths = [str(ROOT / "notebooks")]
    if os.environ.get("JUPYTER_PATH"):
        paths.append(os.environ["JUPYTER_PATH"])
    os.environ["JUPYTER_PATH"] = os.pathsep.join(paths)
    runtime = tempfile.mkdtemp(prefix="pc-nb-runtime-")
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", runtime)

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(src, as_version=4)
    kernel = args.kernel or nb.metadata.get("kernelspec", {}).get("name")
    if not kernel:
        print(f"run_notebook: {src} names no kernel (metadata.kernelspec.name); pass --kernel", file=sys.stderr)
        return 2
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    times: dict = {}

    grace = float(os.environ.get("PC_NB_IOPUB_GRACE", "0.2"))
    late = {"outputs": 0, "which": []}

    class Client(NotebookClient):
        """NotebookClient that prints a line per cell, records its wall time, and keeps late outputs.

        Deno's kernel can report a cell idle before all of that cell's output messages have left; plain
        nbclient then drops them (it stops reading a cell's messages at idle, and ignores messages of
        earlier cells). Here a cell's messages are read for `grace` seconds more after its idle, and a
        message that still arrives later, during the next cell, goes to the cell it belongs to.
        """

        _cells_by_msg: dict = {}

        async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
            from queue import Empty

            from nbclient.exceptions import CellExecutionComplete
            from nbclient.util import ensure_async

            self._cells_by_msg[parent_msg_id] = (cell, cell_index)
            loop = asyncio.get_running_loop()
            idle_at = None
            while True:
                timeout = None
                if idle_at is not None:
                    timeout = grace - (loop.time() - idle_at)
                    if timeout <= 0:
                        return
                try:
                    msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=timeout))
                except Empty:
                    return
                pid = msg["parent_header"].get("msg_id")
                target = self._cells_by_msg.get(pid)
                if target is None:
                    continue
                if (pid != parent_msg_id or idle_at is not None) and msg["msg_type"] in OUTPUT_TYPES:
                    late["outputs"] += 1
                    late["which"].append(
                        {"cell": target[1], "msg_type": msg["msg_type"], "after_idle": pid == parent_msg_id}
                    )
                try:
                    self.process_message(msg, *target)
                except CellExecutionComplete:
                    if pid == parent_msg_id:
                        idle_at = loop.time()

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            t0 = time.time()
            head = (cell.source.strip().splitlines() or [""])[0][:70]
            n = code_cells.index(cell_index) + 1 if cell_index in code_cells else 0
            try:
                return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            finally:
                if cell.cell_type == "code":
                    times[cell_index] = time.time() - t0
                    print(f"[{src.name}] cell {n}/{len(code_cells)} ({times[cell_index]:.1f} s): {head}",
                          file=sys.stderr, flush=True)

    client = Client(
        nb,
        kernel_name=kernel,
        timeout=args.timeout,
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": str(ROOT)}},
    )
    failure = None
    t_start = time.time()
    try:
        client.execute()
    except CellExecutionError as e:
        failure = f"a cell raised an error:\n{e}"
    except CellTimeoutError as e:
        failure = f"a cell ran longer than {args.timeout:.0f} s: {e}"
    except DeadKernelError as e:
        failure = f"the kernel died: {e}"
    except Exception as e:  # kernel could not start, etc.
        failure = f"{type(e).__name__}: {e}"
    total = time.time() - t_start

    # An error output anywhere fails the run, even if the kernel did not report the cell as failed.
    cells = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        outs = []
        for o in c.get("outputs", []):
            entry = {"output_type": o.output_type}
            if "data" in o:
                entry["mimetypes"] = sorted(o.data.keys())
            if o.output_type == "stream":
                entry["name"] = o.get("name")
            if o.output_type == "error":
                entry["ename"], entry["evalue"] = o.get("ename"), o.get("evalue")
                if failure is None:
                    failure = f"cell {i} has an error output: {o.get('ename')}: {o.get('evalue')}"
            outs.append(entry)
        head = (c.source.strip().splitlines() or [""])[0]
        cells.append({"index": i, "first_line": head, "seconds": times.get(i), "outputs": outs})

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        if args.trust:
            from nbformat.sign import NotebookNotary

            NotebookNotary().sign(nbformat.read(out, as_version=4))
    report = {
        "notebook": str(src),
        "kernel": kernel,
        "ok": failure is None,
        "failure": failure,
        "seconds": total,
        "late_outputs": late["outputs"],
        "late": late["which"],
        "cells": cells,
    }
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=1))
    if failure:
        print(f"run_notebook: {src}: FAILED: {failure}", file=sys.stderr)
        return 1
    print(
        f"run_notebook: {src}: ok ({len(cells)} code cells, {total:.1f} s, "
        f"{late['outputs']} output messages arrived after their cell's idle)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
