/**
 * PyTorch checkpoint reader (`torch.save` output), no Python needed:
 * - zip format (PyTorch >= 1.6): `<dir>/data.pkl` + `<dir>/data/<key>` storages;
 * - legacy format (PyTorch < 1.6, e.g. the official `hrnetv2_w48_imagenet_pretrained.pth`): a sequence of
 *   pickles (magic number, protocol, sys info, the object, storage keys) followed by raw storages.
 * Tensors are rebuilt only through `torch._utils._rebuild_tensor_v2` & co. from the allowlist.
 */
import { NUMPY_GLOBALS } from "./numpy.ts";
import { type GlobalHandler, PickleError, type PickleGlobals, PyGlobal, unpickle } from "./pickle.ts";
import {
  checkRawTensor,
  type DType,
  DTYPE_SIZE,
  gatherStrided,
  type RawTensor,
  ReadBudget,
  showValue,
  WeightFileError,
} from "./tensor.ts";
import { isZip, ZipReader } from "./zip.ts";

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: "float32",
  DoubleStorage: "float64",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  UntypedStorage: "uint8",
};

/** A storage referenced by a persistent id; bytes are attached after (legacy) or during (zip) loading. */
export class TorchStorage {
  bytes: Uint8Array | null = null;
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number) {}
}

/** A tensor view on a storage, materialised to a RawTensor once all storages are loaded. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}

  toRaw(what: string, budget?: ReadBudget): RawTensor {
    if (!this.storage.bytes) throw new PickleError(`${what}: storage '${this.storage.key}' was never loaded`);
    const size = DTYPE_SIZE[this.storage.dtype];
    const data = gatherStrided(this.storage.bytes, size, this.shape, this.stride, this.offset, what, budget);
    return checkRawTensor({ dtype: this.storage.dtype, shape: this.shape, data }, what);
  }
}

function ints(x: unknown, what: string, source: string): number[] {
  if (!Array.isArray(x) || !x.every((d) => typeof d === "number" && Number.isInteger(d))) {
    throw new PickleError(`${source}: bad ${what} ${showValue(x)}`);
  }
  return x as number[];
}

const rebuildTensor: GlobalHandler = {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  // _rebuild_tensor(storage, storage_offset, size, stride)
  call: (args, source) => {
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof TorchStorage)) throw new PickleError(`${source}: tensor without a storage`);
    if (typeof offset !== "number") throw new PickleError(`${source}: bad storage offset`);
    return new TorchTensor(storage, offset, ints(size, "size", source), ints(stride, "stride", source));
  },
};

const rebuildParameter: GlobalHandler = {
  // _rebuild_parameter(data, requires_grad, backward_hooks[, state])
  call: (args, source) => {
    if (!(args[0] instanceof TorchTensor)) throw new PickleError(`${source}: parameter without a tensor`);
    return args[0];
  },
};

const rebuildFromType: GlobalHandler = {
  // torch._tensor._rebuild_from_type_v2(func, new_type, args, state): only plain tensors/parameters.
  call: (args, source) => {
    const [fn, newType, fnArgs] = args;
    if (!(fn instanceof PyGlobal) || !fn.handler.call || !(newType instanceof PyGlobal)) {
      throw new PickleError(`${source}: unsupported _rebuild_from_type_v2`);
    }
    return fn.handler.call(fnArgs as unknown[], source);
  },
};

function torchGlobals(): PickleGlobals {
  const g: PickleGlobals = {
    ...NUMPY_GLOBALS,
    "torch._utils._rebuild_tensor_v2": rebuildTensor,
    "torch._utils._rebuild_tensor": rebuildTensor,
    "torch._utils._rebuild_parameter": rebuildParameter,
    "torch._utils._rebuild_parameter_with_state": rebuildParameter,
    "torch._tensor._rebuild_from_type_v2": rebuildFromType,
    "torch.Tensor": {},
    "torch.nn.parameter.Parameter": {},
  };
  for (const name of Object.keys(STORAGE_DTYPES)) g[`torch.${name}`] = {};
  return g;
}

function storageFromPid(pid: unknown, storages: Map<string, TorchStorage>, source: string): TorchStorage {
  // zip: ('storage', storage_type, key, location, numel)
  // legacy: ('storage', storage_type, root_key, location, numel, view_metadata)
  if (!Array.isArray(pid) || pid[0] !== "storage") {
    throw new PickleError(`${source}: unsupported persistent id ${showValue(pid)}`);
  }
  const [, type, key, , numel, view] = pid;
  if (!(type instanceof PyGlobal) || !(type.name in STORAGE_DTYPES) || typeof key !== "string") {
    throw new PickleError(`${source}: unsupported storage in persistent id`);
  }
  if (view != null) {
    throw new PickleError(`${source}: storage views (legacy view_metadata) are not supported`);
  }
  let s = storages.get(key);
  if (!s) {
    s = new TorchStorage(key, STORAGE_DTYPES[type.name], typeof numel === "number" ? numel : 0);
    storages.set(key, s);
  }
  return s;
}

/** How deeply checkpoint containers may nest (state_dict in a dict in a list: a handful of levels). */
export const MAX_NESTING = 100;

/** Replace every TorchTensor in a nested value by its RawTensor (other values unchanged). */
function materialise(v: unknown, source: string, path: string, budget: ReadBudget, depth = 0): unknown {
  if (depth > MAX_NESTING) {
    throw new WeightFileError(
      `${source}: containers nested deeper than ${MAX_NESTING} levels at '${path.slice(0, 200)}' ` +
        "(or a container that holds itself)",
    );
  }
  if (v instanceof TorchTensor) return v.toRaw(`${source}: ${path}`, budget);
  if (v instanceof Map) {
    const m = new Map();
    for (const [k, x] of v) {
      m.set(k, materialise(x, source, path ? `${path}.${String(k)}` : String(k), budget, depth + 1));
    }
    return m;
  }
  if (Array.isArray(v)) return v.map((x, i) => materialise(x, source, `${path}[${i}]`, budget, depth + 1));
  return v;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** Read a `.pth` file (zip or legacy). Returns the unpickled object with tensors as RawTensors. */
export async function readTorchCheckpoint(
  bytes: Uint8Array,
  source: string,
  budget = new ReadBudget(source, Infinity),
): Promise<unknown> {
  const globals = torchGlobals();
  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown) => storageFromPid(pid, storages, source);

  if (isZip(bytes)) {
    const zip = new ZipReader(bytes, source);
    const pkl = [...zip.entries.keys()].find((n) => n === "data.pkl" || n.endsWith("/data.pkl"));
    if (!pkl) throw new WeightFileError(`${source}: zip archive without data.pkl (not a torch.save file)`);
    const dir = pkl.slice(0, pkl.length - "data.pkl".length);
    const bo = zip.entries.has(`${dir}byteorder`)
      ? new TextDecoder().decode(await zip.read(`${dir}byteorder`))
      : "little";
    if (bo.trim() !== "little") {
      throw new WeightFileError(`${source}: big-endian torch archives are not supported`);
    }
    const { value } = unpickle(await zip.read(pkl), { source: `${source}: ${pkl}`, globals, persistentLoad });
    for (const s of storages.values()) {
      s.bytes = await zip.read(`${dir}data/${s.key}`, budget);
    }
    return materialise(value, source, "", budget);
  }

  // Legacy: magic, protocol version, sys_info, object, storage keys, then storages.
  let pos = 0;
  const next = (label: string, withPid = false) => {
    const r = unpickle(bytes, {
      source: `${source}: ${label} pickle`,
      globals,
      offset: pos,
      persistentLoad: withPid ? persistentLoad : undefined,
    });
    pos = r.end;
    return r.value;
  };
  const magic = next("magic number");
  if (typeof magic !== "bigint" || magic !== LEGACY_MAGIC) {
    throw new WeightFileError(
      `${source}: neither a zip archive nor a legacy torch.save file (bad magic number)`,
    );
  }
  const protocol = next("protocol version");
  if (protocol !== 1001) {
    throw new WeightFileError(`${source}: unsupported legacy torch protocol ${String(protocol)}`);
  }
  const sysInfo = next("sys info");
  if (sysInfo instanceof Map && sysInfo.get("little_endian") === false) {
    throw new WeightFileError(`${source}: big-endian torch files are not supported`);
  }
  const value = next("object", true);
  const keys = next("storage keys");
  if (!Array.isArray(keys)) throw new WeightFileError(`${source}: bad legacy storage key list`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys) {
    const s = storages.get(String(key));
    if (!s) throw new WeightFileError(`${source}: storage '${key}' listed but never referenced`);
    if (pos + 8 > bytes.length) throw new WeightFileError(`${source}: truncated storage '${key}'`);
    const numel = Number(dv.getBigInt64(pos, true));
    pos += 8;
    const nbytes = numel * DTYPE_SIZE[s.dtype];
    if (!(numel >= 0 && pos + nbytes <= bytes.length)) {
      throw new WeightFileError(
        `${source}: storage '${key}' declares ${numel} elements (${nbytes} bytes) at offset ${pos}, ` +
          `beyond the end of the file (${bytes.length} bytes): truncated or corrupt`,
      );
    }
    s.bytes = bytes.subarray(pos, pos + nbytes);
    pos += nbytes;
  }
  return materialise(value, source, "", budget);
}
