/**
 * A SAFE subset of Python's unpickler, enough for model checkpoints: PaddleSeg `.pdparams` (a pickle of a
 * dict of numpy arrays) and PyTorch `.pth` (pickles that rebuild tensors from storages).
 *
 * Nothing is ever executed: a pickle can only name globals, and every global must be in the allowlist
 * given by the caller (`PickleGlobals`), each mapped to a TypeScript handler that builds inert data.
 * Any other global (`os.system`, `builtins.eval`, `posix.system`, `subprocess.Popen`, ...) is rejected
 * with an `UnsafePickleError` as soon as the GLOBAL / STACK_GLOBAL / INST opcode names it. Opcodes outside
 * the supported set (EXT*, out-of-band buffers, ...) are rejected too.
 *
 * Python values map to: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float ->
 * number, str -> string, bytes -> Uint8Array (a view into the input), tuple/list -> array,
 * dict -> Map, set -> Set; allowlisted globals produce whatever their handler returns.
 */

import { WeightFileError } from "./tensor.ts";

export class PickleError extends WeightFileError {
  override name = "PickleError";
}

/** Digits of a text-encoded integer, or bytes of a LONG4: BigInt parsing is quadratic, checkpoints need few. */
const MAX_INT_DIGITS = 4096;

export class UnsafePickleError extends PickleError {
  override name = "UnsafePickleError";
}

/** A named global from the allowlist, as it sits on the pickle stack before being called. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string, readonly handler: GlobalHandler) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object that accepts BUILD (`__setstate__`). */
export interface Buildable {
  setState(state: unknown): void;
}

function isBuildable(x: unknown): x is Buildable {
  return typeof x === "object" && x !== null && typeof (x as Buildable).setState === "function";
}

export interface GlobalHandler {
  /** Called by REDUCE / NEWOBJ / OBJ / INST with the argument tuple. Absent: the global is a plain token. */
  call?: (args: unknown[], source: string) => unknown;
}

/** Allowlist: "module.name" -> handler. */
export type PickleGlobals = Record<string, GlobalHandler>;

export interface UnpickleOptions {
  /** File name (or other label) used in error messages. */
  source: string;
  globals: PickleGlobals;
  /** Resolves BINPERSID / PERSID ids (PyTorch storages). Absent: persistent ids are an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Offset where the pickle starts (several pickles may follow each other). Default 0. */
  offset?: number;
}

const MARK = Symbol("mark");

/** Unpickle one object. Returns it and the offset just past its STOP opcode. */
export function unpickle(bytes: Uint8Array, o: UnpickleOptions): { value: unknown; end: number } {
  const src = o.source;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
  const utf8 = {
    decode: (b: Uint8Array): string => {
      try {
        return utf8Decoder.decode(b);
      } catch {
        return fail("string is not valid UTF-8");
      }
    },
  };
  let pos = o.offset ?? 0;
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();

  const fail = (msg: string, at = pos): never => {
    throw new PickleError(`${src}: ${msg} (pickle offset ${at})`);
  };
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) fail(`truncated pickle: need ${n} bytes`);
  };
  const u8 = () => {
    need(1);
    return bytes[pos++];
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail("length too large");
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    const b = bytes.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("unterminated text line");
    const s = new TextDecoder("latin1").decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const numberLine = () => {
    const s = line();
    if (s.length > MAX_INT_DIGITS) {
      fail(`integer of ${s.length} digits (at most ${MAX_INT_DIGITS} are accepted)`);
    }
    if (!/^\s*[-+]?\d+L?\s*$/.test(s)) fail(`bad integer literal '${s.slice(0, 40)}'`);
    return s.trim();
  };
  const pop = () => {
    if (stack.length === 0) fail("stack underflow");
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    for (let i = stack.length - 1; i >= 0; i--) {
      if (stack[i] === MARK) {
        const items = stack.slice(i + 1);
        stack.length = i;
        return items;
      }
    }
    return fail("MARK not found");
  };
  const findGlobal = (module: string, name: string): PyGlobal => {
    const key = `${module}.${name}`;
    const h = Object.prototype.hasOwnProperty.call(o.globals, key) ? o.globals[key] : undefined;
    if (!h) {
      throw new UnsafePickleError(
        `${src}: refusing to load global '${key}' (pickle offset ${pos}): only tensor/array rebuilding ` +
          `globals are allowed; this file may be malicious or contain non-tensor objects`,
      );
    }
    return new PyGlobal(module, name, h);
  };
  const callGlobal = (fn: unknown, args: unknown, op: string): unknown => {
    if (!(fn instanceof PyGlobal)) fail(`${op}: callable is not an allowed global`);
    const g = fn as PyGlobal;
    if (!g.handler.call) {
      throw new UnsafePickleError(`${src}: global '${g.qualname}' may not be called (${op})`);
    }
    if (!Array.isArray(args)) fail(`${op}: arguments of '${g.qualname}' are not a tuple`);
    return g.handler.call(args as unknown[], src);
  };
  const decodeLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    if (b.length > MAX_INT_DIGITS) {
      fail(`integer of ${b.length} bytes (at most ${MAX_INT_DIGITS} are accepted)`);
    }
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (dict: unknown, kv: unknown[]) => {
    if (!(dict instanceof Map)) fail("SETITEM(S) on a non-dict");
    if (kv.length % 2) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < kv.length; i += 2) (dict as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const appendItems = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list)) fail("APPEND(S) on a non-list");
    for (const it of items) (list as unknown[]).push(it);
  };
  const pyStr = (s: string): string => {
    // Text-protocol STRING: a quoted Python literal; only simple escapes are supported.
    const q = s[0];
    if ((q !== "'" && q !== '"') || s[s.length - 1] !== q) fail("bad STRING literal");
    return s.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_m, e: string) => {
      if (e[0] === "x") return String.fromCharCode(parseInt(e.slice(1), 16));
      return ({ n: "\n", r: "\r", t: "\t", "\\": "\\", "'": "'", '"': '"' } as Record<string, string>)[e] ??
        e;
    });
  };

  for (;;) {
    const opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) fail(`unsupported pickle protocol ${v}`, opAt);
        break;
      }
      case 0x95: // FRAME: framing is only a hint for streaming readers
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} items on the stack`, opAt);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      // ---- constants and numbers
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail("negative LONG4 length", opAt);
        stack.push(decodeLong(take(n)));
        break;
      }
      case 0x47: { // BINFLOAT (big-endian double)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x49: { // INT (text): also encodes True/False as I01/I00
        const s = numberLine();
        if (s === "01") stack.push(true);
        else if (s === "00") stack.push(false);
        else {
          const v = BigInt(s);
          stack.push(
            v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v,
          );
        }
        break;
      }
      case 0x4c: { // LONG (text)
        const v = BigInt(numberLine().replace(/L$/, ""));
        stack.push(
          v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v,
        );
        break;
      }
      case 0x46: // FLOAT (text)
        stack.push(parseFloat(line()));
        break;
      // ---- strings and bytes
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(take(u64())));
        break;
      case 0x56: // UNICODE (text, raw-unicode-escape; \\uXXXX escapes)
        stack.push(
          line().replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
        );
        break;
      case 0x54: { // BINSTRING (Python 2 str): latin-1 text
        const n = i32();
        if (n < 0) fail("negative BINSTRING length", opAt);
        stack.push(new TextDecoder("latin1").decode(take(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(new TextDecoder("latin1").decode(take(u8())));
        break;
      case 0x53: // STRING (text)
        stack.push(pyStr(line()));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()));
        break;
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()));
        break;
      // ---- containers
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail("ADDITEMS on a non-set", opAt);
        for (const it of items) (s as Set<unknown>).add(it);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      // ---- memo
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: // PUT (text)
        memo.set(parseInt(line(), 10), top());
        break;
      case 0x68: // BINGET
      case 0x6a: // LONG_BINGET
      case 0x67: { // GET (text)
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : parseInt(line(), 10);
        if (!memo.has(k)) fail(`memo key ${k} not found`, opAt);
        stack.push(memo.get(k));
        break;
      }
      // ---- globals and object construction (all gated by the allowlist)
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line(), name = line();
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          fail("STACK_GLOBAL needs two strings", opAt);
        }
        stack.push(findGlobal(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        stack.push(callGlobal(fn, args, "REDUCE"));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop(), cls = pop();
        stack.push(callGlobal(cls, args, "NEWOBJ"));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop(), args = pop(), cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size > 0) fail("NEWOBJ_EX with keyword arguments", opAt);
        stack.push(callGlobal(cls, args, "NEWOBJ_EX"));
        break;
      }
      case 0x6f: { // OBJ
        const items = popMark();
        const cls = items.shift();
        stack.push(callGlobal(cls, items, "OBJ"));
        break;
      }
      case 0x69: { // INST "module\nname\n"
        const module = line(), name = line();
        const g = findGlobal(module, name);
        stack.push(callGlobal(g, popMark(), "INST"));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (isBuildable(obj)) obj.setState(state);
        else if (obj instanceof Map) {
          // e.g. OrderedDict's attribute dict (torch's `_metadata`): attributes are not dict items.
        } else fail("BUILD on an object that takes no state", opAt);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!o.persistentLoad) fail("persistent ids are not supported for this file type", opAt);
        stack.push(o.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line();
        if (!o.persistentLoad) fail("persistent ids are not supported for this file type", opAt);
        stack.push(o.persistentLoad!(pid));
        break;
      }
      default:
        throw new UnsafePickleError(
          `${src}: unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")} at offset ${opAt} ` +
            `(only the opcodes needed for tensor checkpoints are accepted)`,
        );
    }
  }
}
