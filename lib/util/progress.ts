/**
 * Progress reporting for long work (training, evaluation, unpacking, set-up): a one-line bar with rate
 * and ETA on terminals, plain periodic lines otherwise (CI logs, notebooks, pipes).
 */
export interface ProgressOptions {
  /** Total units (iterations, bytes, images); 0 when unknown. */
  total: number;
  /** Label printed first, e.g. "train" or "unpack". */
  label: string;
  /** Unit name for the rate, e.g. "it", "img", "B". */
  unit?: string;
  /** Format units as bytes (KiB/MiB/GiB). */
  bytes?: boolean;
  /** Seconds between plain (non-TTY) lines. */
  plainEvery?: number;
  /** Where to write; defaults to stderr. */
  write?: (line: string, inPlace: boolean) => void;
  /** Force TTY (in-place) mode on or off; defaults to whether stderr is a terminal. */
  tty?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
    ? `${m}m${String(r).padStart(2, "0")}s`
    : `${r}s`;
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export class Progress {
  readonly opts: Required<Omit<ProgressOptions, "write" | "tty">>;
  #done = 0;
  #start = performance.now();
  #lastPlain = -Infinity;
  /** Position at the last clock restart: the rate counts only units done since then. */
  #base = 0;
  #tty: boolean;
  #write: (line: string, inPlace: boolean) => void;
  #enc = new TextEncoder();

  constructor(opts: ProgressOptions) {
    this.opts = { unit: "it", bytes: false, plainEvery: 10, ...opts };
    this.#tty = opts.tty ?? Deno.stderr.isTerminal();
    this.#write = opts.write ?? ((line, inPlace) => {
      Deno.stderr.writeSync(this.#enc.encode(inPlace ? `\r\x1b[K${line}` : `${line}\n`));
    });
  }

  get done(): number {
    return this.#done;
  }

  /** Seconds since start. */
  get elapsed(): number {
    return (performance.now() - this.#start) / 1000;
  }

  /** Units per second since the last clock restart. */
  get rate(): number {
    return (this.#done - this.#base) / Math.max(this.elapsed, 1e-9);
  }

  /** Advances by `n` units and redraws; `extra` is appended (e.g. "loss 0.53 lr 0.0099"). */
  tick(n = 1, extra = ""): void {
    this.update(this.#done + n, extra);
  }

  /** Sets the absolute position (e.g. when resuming at iteration k). */
  update(done: number, extra = "", force = false): void {
    this.#done = done;
    const now = performance.now() / 1000;
    if (this.#tty) {
      this.#write(this.line(extra), true);
    } else if (force || now - this.#lastPlain >= this.opts.plainEvery || done === this.opts.total) {
      this.#lastPlain = now;
      this.#write(this.line(extra), false);
    }
  }

  /** Resets the clock (e.g. after warm-up or on resume) without changing the position. */
  restartClock(doneAtRestart = this.#done): void {
    this.#start = performance.now();
    this.#base = doneAtRestart;
  }

  line(extra = ""): string {
    const { total, label, unit, bytes } = this.opts;
    const fmt = (v: number) => (bytes ? formatBytes(v) : String(Math.round(v)));
    const rate = this.rate;
    const rateStr = bytes ? `${formatBytes(rate)}/s` : `${rate.toFixed(rate < 10 ? 2 : 1)} ${unit}/s`;
    let bar = "";
    let eta = "";
    if (total > 0) {
      const frac = Math.min(1, this.#done / total);
      const width = 24;
      const full = Math.round(frac * width);
      bar = `[${"#".repeat(full)}${".".repeat(width - full)}] ${(frac * 100).toFixed(1).padStart(5)}% `;
      eta = ` ETA ${rate > 0 ? formatDuration((total - this.#done) / rate) : "?"}`;
    }
    const count = total > 0 ? `${fmt(this.#done)}/${fmt(total)}` : fmt(this.#done);
    return `${label} ${bar}${count} ${rateStr}${eta}${extra ? "  " + extra : ""}`;
  }

  /** Final line (always printed, ends the in-place line). */
  finish(extra = ""): void {
    if (this.#tty) this.#write(this.line(extra), true);
    this.#write(this.#tty ? "" : this.line(extra), false);
  }
}
