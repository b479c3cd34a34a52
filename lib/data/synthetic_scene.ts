/**
 * A deterministic renderer of Cityscapes-like street scenes (the embedded default dataset).
 *
 * A tiny ray caster over a street world, in metres: X lateral (right +), Y up, Z forward; a pinhole
 * camera at height camH looking down the street. The background is solved per pixel (ground plane with
 * road, lane marks, tram tracks, sidewalk tiles and grass strips; vertical planes along the street for
 * facades with windows, walls, fences and hedges; a facade across the far end; sky with clouds); objects
 * standing on the ground (cars, trucks, buses, trams, people, riders on bicycles and motorcycles, parked
 * two-wheelers, poles with signs and traffic lights, street lights, trees, bins) are camera-facing
 * billboards with per-class shapes, painted far to near, so they occlude each other and the background
 * as in a photograph. Textures live in world coordinates (perspective-correct); lighting (sun side,
 * shadows, exposure, colour temperature), haze by depth and sensor noise vary per image. Colour is
 * rendered at `ss` x `ss` samples per pixel and box-filtered; labels take one sample per pixel.
 *
 * Labels are Cityscapes label ids (cityscapes_labels.ts), including void ids that train as ignore:
 * ego vehicle (1, the car's hood), static (4, bins), rail track (10). Class frequencies follow
 * Cityscapes' ordering roughly: road, building, vegetation, sky, car, sidewalk ... down to train and
 * motorcycle; every class is learnable from local texture and context, not from a unique colour (cars,
 * walls, sidewalks and overcast skies share grays; grass and leaves share greens).
 */
import type { Rng } from "../util/rng.ts";

/** Cityscapes label ids used by the renderer. */
export const ID = {
  ego: 1,
  static: 4,
  road: 7,
  sidewalk: 8,
  railTrack: 10,
  building: 11,
  wall: 12,
  fence: 13,
  pole: 17,
  trafficLight: 19,
  trafficSign: 20,
  vegetation: 21,
  terrain: 22,
  sky: 23,
  person: 24,
  rider: 25,
  car: 26,
  truck: 27,
  bus: 28,
  train: 31,
  motorcycle: 32,
  bicycle: 33,
} as const;

export interface SceneImage {
  width: number;
  height: number;
  /** [height, width, 3] uint8 RGB */
  rgb: Uint8Array;
  /** [height, width] uint8 Cityscapes label ids */
  labelIds: Uint8Array;
}

// ---------------------------------------------------------------------------------------------------
// noise (hash-based value noise; deterministic, no state)

function hash3(x: number, y: number, s: number): number {
  let h = Math.imul(x | 0, 0x27d4eb2d) ^ Math.imul(y | 0, 0x165667b1) ^ Math.imul(s | 0, 0x61c88647);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** A 256x256 lattice of hashed values; value noise reads it (periodic every 256 lattice units). */
const LATTICE = (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = hash3(i & 255, i >> 8, 0x5eed);
  return t;
})();

function vnoise(x: number, y: number, s: number): number {
  const xi = Math.floor(x), yi = Math.floor(y);
  let fx = x - xi, fy = y - yi;
  fx = fx * fx * (3 - 2 * fx);
  fy = fy * fy * (3 - 2 * fy);
  const ox = (xi + Math.imul(s, 0x9e3779b1)) & 255, oy = (yi + Math.imul(s, 0x85ebca6b) + (s >>> 8)) & 255;
  const ox1 = (ox + 1) & 255, oy0 = oy << 8, oy1 = ((oy + 1) & 255) << 8;
  const a = LATTICE[ox | oy0], b = LATTICE[ox1 | oy0], c = LATTICE[ox | oy1], d = LATTICE[ox1 | oy1];
  return a + (b - a) * fx + (c - a) * fy + (a - b - c + d) * fx * fy;
}

/** Fractal noise in [0, 1). */
function fbm(x: number, y: number, s: number, oct = 3): number {
  let sum = 0, amp = 0.5, norm = 0;
  for (let o = 0; o < oct; o++) {
    sum += amp * vnoise(x, y, s + o * 101);
    norm += amp;
    x *= 2.03;
    y *= 2.03;
    amp *= 0.5;
  }
  return sum / norm;
}

const frac = (v: number) => v - Math.floor(v);
const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

// ---------------------------------------------------------------------------------------------------
// the paint buffer: the current sample's colour and label, set by the material functions

// (a typed array, not module-level `let`s: doubles stored in those would each allocate a heap number)
const PAINT = new Float64Array(4);
function paint(r: number, g: number, b: number, id: number) {
  PAINT[0] = r;
  PAINT[1] = g;
  PAINT[2] = b;
  PAINT[3] = id;
}

type RGB = [number, number, number];
const jitter = (rng: Rng, c: RGB, a: number): RGB => c.map((v) => clamp01(v + rng.uniform(-a, a))) as RGB;
function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

// ---------------------------------------------------------------------------------------------------
// scene description

interface SidePlane {
  side: -1 | 1;
  /** distance from the camera axis, > 0 */
  x: number;
  z0: number;
  z1: number;
  height: number;
  kind: "building" | "wall" | "fence" | "hedge";
  color: RGB;
  seed: number;
  /** building: floor height, window spacing/width/height, style; fence: style */
  floorH: number;
  winSpacing: number;
  winW: number;
  winH: number;
  style: number;
}

interface Billboard {
  x: number;
  z: number;
  w: number;
  h: number;
  /** height of the bottom above ground (signs on poles) */
  y0: number;
  draw: (u: number, v: number, xm: number, ym: number) => boolean;
}

interface Scene {
  camH: number;
  f: number; // focal length in units of image width
  cx: number; // vanishing point, fraction of width
  cy: number; // horizon, fraction of height
  roadL: number; // road from -roadL to +roadR
  roadR: number;
  laneW: number;
  lanes: number[]; // lane boundary X positions (inner ones, dashed)
  tramX: number | null;
  lawn: number; // grass strip between road and sidewalk (0: none)
  walk: number; // sidewalk width
  zEnd: number;
  endHeight: number;
  endColor: RGB;
  planes: SidePlane[];
  parkZ: Array<[number, number, -1 | 1]>; // ground beyond the sidewalk is grass there
  objects: Billboard[];
  asphalt: RGB;
  paving: RGB;
  tile: number;
  grass: RGB;
  leaf: RGB;
  skyTop: RGB;
  skyHorizon: RGB;
  cloud: number;
  sun: -1 | 1;
  shadow: number; // width of the facade shadow band on the ground (m)
  exposure: number;
  tint: RGB;
  haze: number;
  hood: number; // ego-vehicle hood height as a fraction of image height (0: none)
  hoodColor: RGB;
  seed: number;
}

const FACADES: RGB[] = [
  [0.78, 0.72, 0.6],
  [0.85, 0.82, 0.74],
  [0.62, 0.6, 0.58],
  [0.58, 0.34, 0.26],
  [0.9, 0.88, 0.85],
  [0.86, 0.78, 0.5],
  [0.38, 0.38, 0.4],
  [0.7, 0.55, 0.45],
];
const CAR_COLORS: RGB[] = [
  [0.9, 0.9, 0.9],
  [0.62, 0.63, 0.66],
  [0.08, 0.08, 0.1],
  [0.6, 0.08, 0.06],
  [0.12, 0.2, 0.45],
  [0.35, 0.36, 0.38],
  [0.75, 0.74, 0.7],
  [0.2, 0.35, 0.25],
];
const CLOTHES: RGB[] = [
  [0.1, 0.1, 0.12],
  [0.2, 0.25, 0.45],
  [0.55, 0.1, 0.12],
  [0.85, 0.85, 0.82],
  [0.35, 0.3, 0.25],
  [0.15, 0.35, 0.2],
  [0.8, 0.6, 0.2],
  [0.45, 0.45, 0.5],
];
const SKIN: RGB[] = [[0.92, 0.76, 0.64], [0.78, 0.58, 0.44], [0.55, 0.38, 0.27], [0.36, 0.24, 0.17]];

// ---------------------------------------------------------------------------------------------------
// billboard shapes. u, v in [0, 1] across / bottom-to-top; xm, ym the same in metres.

function carRear(rng: Rng, oncoming: boolean): Billboard["draw"] {
  const body = jitter(rng, pick(rng, CAR_COLORS), 0.04);
  const glass = jitter(rng, [0.12, 0.15, 0.2], 0.04);
  const roofV = rng.uniform(0.9, 0.97), beltV = rng.uniform(0.5, 0.58);
  const seed = rng.int(1 << 30);
  return (u, v, xm, ym) => {
    const e = Math.min(u, 1 - u);
    if (v < 0.22) {
      if (e < 0.2 && v < 0.2) return paint(0.05, 0.05, 0.05, ID.car), true; // tyres
      if (v < 0.1) return false; // gap under the car
    }
    if (v < beltV) {
      if (v > 0.12 && v < 0.2) return paint(0.12, 0.12, 0.13, ID.car), true; // bumper
      const lamp = v > beltV - 0.12 && v < beltV - 0.03 && e < 0.16 && e > 0.02;
      if (lamp) return (oncoming ? paint(0.95, 0.93, 0.8, ID.car) : paint(0.75, 0.06, 0.05, ID.car)), true;
      if (v > 0.26 && v < 0.34 && Math.abs(u - 0.5) < 0.11) return paint(0.9, 0.9, 0.85, ID.car), true; // plate
      const k = 0.75 + 0.35 * v + 0.06 * vnoise(xm * 20, ym * 20, seed);
      return paint(body[0] * k, body[1] * k, body[2] * k, ID.car), true;
    }
    const t = (v - beltV) / (roofV - beltV);
    const m = 0.06 + 0.12 * t + (t > 0.85 ? (t - 0.85) * 0.8 : 0);
    if (v > roofV || e < m) return false;
    if (e > m + 0.04 && t < 0.85) {
      const refl = 0.12 * fbm(xm * 3, ym * 6, seed);
      return paint(glass[0] + refl, glass[1] + refl, glass[2] + refl + 0.04, ID.car), true;
    }
    return paint(body[0] * 0.95, body[1] * 0.95, body[2] * 0.95, ID.car), true;
  };
}

function truckRear(rng: Rng): Billboard["draw"] {
  const box = jitter(
    rng,
    pick(rng, [[0.9, 0.9, 0.88], [0.7, 0.7, 0.72], [0.2, 0.35, 0.6], [0.75, 0.2, 0.15]] as RGB[]),
    0.05,
  );
  const seed = rng.int(1 << 30);
  return (u, v, xm, ym) => {
    const e = Math.min(u, 1 - u);
    if (v < 0.2) {
      if (e < 0.22 && v < 0.18) return paint(0.05, 0.05, 0.05, ID.truck), true;
      if (v < 0.08) return false;
      return paint(0.15, 0.15, 0.15, ID.truck), true; // chassis
    }
    if (v < 0.26) {
      if (e < 0.1 && v > 0.21) return paint(0.7, 0.05, 0.04, ID.truck), true;
      return paint(0.2, 0.2, 0.2, ID.truck), true;
    }
    // cargo box: door panels, ribs, dirt
    const rib = frac(xm / 0.6) < 0.06 ? 0.82 : 1;
    const seam = Math.abs(u - 0.5) < 0.008 ? 0.6 : 1;
    const dirt = 0.9 + 0.1 * fbm(xm * 2, ym * 2, seed) - (1 - v) * 0.15;
    const k = rib * seam * dirt;
    return paint(box[0] * k, box[1] * k, box[2] * k, ID.truck), true;
  };
}

function busRear(rng: Rng): Billboard["draw"] {
  const c = jitter(
    rng,
    pick(
      rng,
      [[0.9, 0.75, 0.1], [0.75, 0.15, 0.12], [0.9, 0.9, 0.9], [0.2, 0.45, 0.3], [0.2, 0.3, 0.6]] as RGB[],
    ),
    0.04,
  );
  return (u, v, xm) => {
    const e = Math.min(u, 1 - u);
    if (v < 0.12) {
      return e < 0.2 && v < 0.11
        ? (paint(0.05, 0.05, 0.05, ID.bus), true)
        : v > 0.05
        ? (paint(0.1, 0.1, 0.1, ID.bus), true)
        : false;
    }
    if (v > 0.96 && e < (v - 0.96) * 3) return false; // rounded roof edge
    if (v > 0.88 && v < 0.94 && e > 0.2) return paint(0.95, 0.6, 0.1, ID.bus), true; // destination sign
    if (v > 0.55 && v < 0.85 && e > 0.07) return paint(0.1, 0.12, 0.15, ID.bus), true; // rear window
    if (v > 0.2 && v < 0.45 && e > 0.15 && frac(v * 28) < 0.3) {
      return paint(c[0] * 0.6, c[1] * 0.6, c[2] * 0.6, ID.bus), true; // grille
    }
    if (v > 0.3 && v < 0.42 && e < 0.06) return paint(0.8, 0.08, 0.05, ID.bus), true;
    const k = 0.85 + 0.15 * v + (frac(xm / 1.2) < 0.02 ? -0.1 : 0);
    return paint(c[0] * k, c[1] * k, c[2] * k, ID.bus), true;
  };
}

function tram(rng: Rng, h: number): Billboard["draw"] {
  const c = pick(rng, [[0.92, 0.92, 0.9], [0.85, 0.75, 0.15], [0.7, 0.12, 0.1], [0.15, 0.3, 0.6]] as RGB[]);
  const stripe = pick(rng, [[0.7, 0.1, 0.1], [0.1, 0.2, 0.5], [0.2, 0.2, 0.2]] as RGB[]);
  const bodyTop = (h - 0.7) / h;
  return (u, v) => {
    const e = Math.min(u, 1 - u);
    if (v > bodyTop) {
      // pantograph: a thin diamond of bars above the roof
      const t = (v - bodyTop) / (1 - bodyTop);
      const half = 0.18 * (1 - Math.abs(t - 0.5) * 2);
      if (Math.abs(Math.abs(u - 0.5) - half) < 0.012 || (t > 0.94 && Math.abs(u - 0.5) < 0.25)) {
        return paint(0.15, 0.15, 0.15, ID.train), true;
      }
      return false;
    }
    if (v < 0.06) return e > 0.1 ? (paint(0.08, 0.08, 0.08, ID.train), true) : false;
    const vv = v / bodyTop;
    if (vv > 0.9 && e < (vv - 0.9) * 1.5) return false;
    if (vv > 0.45 && vv < 0.86 && e > 0.06) return paint(0.08, 0.1, 0.12, ID.train), true;
    if (vv > 0.3 && vv < 0.38) return paint(stripe[0], stripe[1], stripe[2], ID.train), true;
    if (vv > 0.18 && vv < 0.24 && e < 0.12 && e > 0.03) return paint(1, 0.95, 0.8, ID.train), true;
    return paint(c[0], c[1], c[2], ID.train), true;
  };
}

function person(rng: Rng, id: number = ID.person): Billboard["draw"] {
  const shirt = jitter(rng, pick(rng, CLOTHES), 0.05);
  const pants = jitter(rng, pick(rng, CLOTHES), 0.05);
  const skin = pick(rng, SKIN);
  const hair = pick(
    rng,
    [[0.1, 0.07, 0.05], [0.35, 0.25, 0.12], [0.75, 0.65, 0.4], [0.5, 0.5, 0.5]] as RGB[],
  );
  const stride = rng.uniform(-0.18, 0.18);
  const bag = rng.next() < 0.3;
  return (u, v) => {
    const dx = u - 0.5;
    if (v > 0.865) {
      const hy = (v - 0.93) / 0.065, hx = dx / 0.15;
      if (hx * hx + hy * hy > 1) return false;
      return (hy > 0.2 || Math.abs(hx) > 0.8
        ? paint(hair[0], hair[1], hair[2], id)
        : paint(skin[0], skin[1], skin[2], id)),
        true;
    }
    if (v > 0.5) {
      const shoulder = v > 0.8 ? 0.28 - (v - 0.8) * 2 : 0.28;
      if (Math.abs(dx) < shoulder - 0.05) {
        return paint(shirt[0] * (0.9 + v * 0.1), shirt[1] * (0.9 + v * 0.1), shirt[2] * (0.9 + v * 0.1), id),
          true;
      }
      if (Math.abs(dx) < shoulder + 0.06 && v < 0.82) {
        return (v < 0.56
          ? paint(skin[0], skin[1], skin[2], id)
          : paint(shirt[0] * 0.8, shirt[1] * 0.8, shirt[2] * 0.8, id)),
          true;
      }
      if (bag && dx > 0.3 && dx < 0.48 && v > 0.52 && v < 0.66) return paint(0.25, 0.15, 0.1, id), true;
      return false;
    }
    // legs, scissoring with the stride
    const s = stride * (0.5 - v) * 2;
    const l = Math.abs(dx + 0.1 + s) < 0.1, r = Math.abs(dx - 0.1 - s) < 0.1;
    if (!(l || r)) return false;
    if (v < 0.035) return paint(0.08, 0.07, 0.07, id), true;
    return paint(pants[0], pants[1], pants[2], id), true;
  };
}

function riderRear(rng: Rng, motor: boolean): Billboard["draw"] {
  const jacket = jitter(
    rng,
    pick(rng, motor ? [[0.1, 0.1, 0.1], [0.3, 0.3, 0.35], [0.5, 0.1, 0.1]] as RGB[] : CLOTHES),
    0.05,
  );
  const helmet = pick(rng, [[0.9, 0.9, 0.9], [0.8, 0.1, 0.1], [0.1, 0.1, 0.1], [0.9, 0.8, 0.1]] as RGB[]);
  const bike = jitter(
    rng,
    pick(rng, [[0.1, 0.1, 0.12], [0.6, 0.1, 0.1], [0.2, 0.3, 0.6], [0.7, 0.7, 0.7]] as RGB[]),
    0.04,
  );
  const vid = motor ? ID.motorcycle : ID.bicycle;
  return (u, v) => {
    const dx = Math.abs(u - 0.5);
    // the vehicle, seen from behind
    if (motor) {
      if (v < 0.32 && dx < 0.09) return paint(0.05, 0.05, 0.05, vid), true; // fat rear tyre
      if (v > 0.15 && v < 0.25 && u > 0.7 && u < 0.8) return paint(0.7, 0.7, 0.72, vid), true; // exhaust
      if (v >= 0.3 && v < 0.52 && dx < 0.27 - (0.52 - v) * 0.4) {
        return (v > 0.44 && v < 0.48 && dx < 0.06
          ? paint(0.8, 0.05, 0.05, vid)
          : paint(bike[0], bike[1], bike[2], vid)),
          true;
      }
    } else {
      if (v < 0.36 && dx < 0.025) return paint(0.05, 0.05, 0.05, vid), true; // thin rear tyre
      if (v >= 0.36 && v < 0.44 && dx < 0.09) return paint(bike[0], bike[1], bike[2], vid), true; // saddle, rack
      if (v > 0.58 && v < 0.61 && dx < 0.4 && dx > 0.28) return paint(0.1, 0.1, 0.1, vid), true; // bar ends
    }
    // the rider
    if (v > 0.86) {
      const hy = (v - 0.93) / 0.07, hx = (u - 0.5) / 0.16;
      return hx * hx + hy * hy <= 1 ? (paint(helmet[0], helmet[1], helmet[2], ID.rider), true) : false;
    }
    if (v > 0.5 && dx < 0.25 + (0.86 - v) * 0.3) {
      return paint(jacket[0], jacket[1], jacket[2], ID.rider), true;
    }
    const legX = motor ? 0.32 : 0.16;
    if (v > 0.18 && v <= 0.55 && Math.abs(dx - legX) < 0.07) return paint(0.15, 0.15, 0.2, ID.rider), true;
    return false;
  };
}

/** Distance from point p to segment ab (metres). */
function segDist(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const vx = bx - ax, vy = by - ay;
  const t = clamp01(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy));
  const dx = px - ax - t * vx, dy = py - ay - t * vy;
  return Math.sqrt(dx * dx + dy * dy);
}

function bicycleSide(rng: Rng): Billboard["draw"] {
  const frame = jitter(
    rng,
    pick(rng, [[0.6, 0.1, 0.1], [0.1, 0.1, 0.1], [0.2, 0.35, 0.6], [0.8, 0.8, 0.8]] as RGB[]),
    0.04,
  );
  // geometry in metres, bike 1.7 x 1.0
  const r = 0.34, rx = 0.36, fx = 1.34, hy = 0.35;
  const seat: [number, number] = [0.62, 0.92],
    bar: [number, number] = [1.2, 0.98],
    crank: [number, number] = [0.78, 0.33];
  return (_u, _v, xm, ym) => {
    const dr = Math.hypot(xm - rx, ym - hy), df = Math.hypot(xm - fx, ym - hy);
    if (Math.abs(dr - r) < 0.035 || Math.abs(df - r) < 0.035) {
      return paint(0.06, 0.06, 0.06, ID.bicycle), true;
    }
    const d = Math.min(
      segDist(xm, ym, rx, hy, crank[0], crank[1]),
      segDist(xm, ym, rx, hy, seat[0], seat[1] - 0.08),
      segDist(xm, ym, crank[0], crank[1], seat[0], seat[1] - 0.08),
      segDist(xm, ym, crank[0], crank[1], bar[0] - 0.05, bar[1] - 0.12),
      segDist(xm, ym, seat[0], seat[1] - 0.1, bar[0] - 0.05, bar[1] - 0.12),
      segDist(xm, ym, fx, hy, bar[0], bar[1]),
    );
    if (d < 0.025) return paint(frame[0], frame[1], frame[2], ID.bicycle), true;
    if (Math.abs(ym - seat[1]) < 0.03 && Math.abs(xm - seat[0]) < 0.1) {
      return paint(0.08, 0.08, 0.08, ID.bicycle), true;
    }
    if (Math.abs(ym - bar[1]) < 0.025 && Math.abs(xm - bar[0]) < 0.12) {
      return paint(0.1, 0.1, 0.1, ID.bicycle), true;
    }
    if ((dr < 0.04 || df < 0.04)) return paint(0.5, 0.5, 0.5, ID.bicycle), true;
    return false;
  };
}

function motorcycleSide(rng: Rng): Billboard["draw"] {
  const body = jitter(
    rng,
    pick(rng, [[0.7, 0.05, 0.05], [0.05, 0.05, 0.06], [0.15, 0.25, 0.6], [0.9, 0.55, 0.1]] as RGB[]),
    0.04,
  );
  const r = 0.32, rx = 0.38, fx = 1.62, hy = 0.32;
  return (_u, _v, xm, ym) => {
    const dr = Math.hypot(xm - rx, ym - hy), df = Math.hypot(xm - fx, ym - hy);
    if (dr < r || df < r) {
      const d = Math.min(dr, df);
      return (d > r - 0.09 ? paint(0.05, 0.05, 0.05, ID.motorcycle) : paint(0.55, 0.55, 0.58, ID.motorcycle)),
        true;
    }
    if (ym > 0.3 && ym < 0.62 && xm > 0.7 && xm < 1.25) return paint(0.25, 0.25, 0.27, ID.motorcycle), true; // engine
    if (ym >= 0.62 && ym < 0.85 && xm > 0.45 && xm < 1.45 - (ym - 0.62) * 0.8) {
      return (xm < 0.9 && ym > 0.76
        ? paint(0.08, 0.08, 0.08, ID.motorcycle)
        : paint(body[0], body[1], body[2], ID.motorcycle)),
        true;
    }
    if (segDist(xm, ym, fx, hy, 1.42, 1.02) < 0.04) return paint(0.6, 0.6, 0.62, ID.motorcycle), true; // fork
    if (Math.abs(ym - 1.03) < 0.03 && xm > 1.3 && xm < 1.55) return paint(0.1, 0.1, 0.1, ID.motorcycle), true;
    return false;
  };
}

function poleDraw(rng: Rng): Billboard["draw"] {
  const c = pick(
    rng,
    [[0.55, 0.55, 0.55], [0.35, 0.36, 0.38], [0.2, 0.28, 0.22], [0.65, 0.64, 0.6]] as RGB[],
  );
  return (u, v) => {
    const k = 0.65 + 0.5 * Math.sin(Math.PI * u) - (v < 0.02 ? 0.2 : 0);
    return paint(c[0] * k, c[1] * k, c[2] * k, ID.pole), true;
  };
}

function armDraw(toLeft: boolean): Billboard["draw"] {
  return (u, v) => {
    const uu = toLeft ? u : 1 - u; // 0 at the lamp end
    if (uu < 0.22) {
      return v < 0.55 ? (paint(0.85, 0.85, 0.8, ID.pole), true) : (paint(0.35, 0.35, 0.35, ID.pole), true);
    }
    return v > 0.6 ? (paint(0.4, 0.4, 0.42, ID.pole), true) : false;
  };
}

function signDraw(rng: Rng): Billboard["draw"] {
  const kind = rng.int(5);
  return (u, v) => {
    const x = u * 2 - 1, y = v * 2 - 1, r = Math.hypot(x, y);
    switch (kind) {
      case 0: // prohibitory: red ring, white disc, dark bar
        if (r > 1) return false;
        if (r > 0.72) return paint(0.8, 0.08, 0.08, ID.trafficSign), true;
        if (Math.abs(y) < 0.12 && Math.abs(x) < 0.5) return paint(0.1, 0.1, 0.1, ID.trafficSign), true;
        return paint(0.95, 0.95, 0.95, ID.trafficSign), true;
      case 1: // mandatory: blue disc, white arrow
        if (r > 1) return false;
        if ((Math.abs(x) < 0.12 && y < 0.4 && y > -0.6) || (y > 0.1 && y < 0.55 && Math.abs(x) < 0.55 - y)) {
          return paint(0.95, 0.95, 0.95, ID.trafficSign), true;
        }
        return paint(0.1, 0.3, 0.75, ID.trafficSign), true;
      case 2: { // warning: triangle, red border
        const t = (y + 1) / 2; // 0 bottom .. 1 top
        if (Math.abs(x) > 1 - t) return false;
        const inner = Math.abs(x) < 1 - t - 0.25 && t > 0.12;
        return (inner ? paint(0.95, 0.95, 0.9, ID.trafficSign) : paint(0.8, 0.08, 0.08, ID.trafficSign)),
          true;
      }
      case 3: // information: blue rectangle with white symbol
        if (Math.abs(x) < 0.55 && Math.abs(y) < 0.55 && Math.abs(x) > 0.2) {
          return paint(0.95, 0.95, 0.95, ID.trafficSign), true;
        }
        return paint(0.1, 0.3, 0.7, ID.trafficSign), true;
      default: // priority: yellow diamond on white
        if (Math.abs(x) + Math.abs(y) > 1) return false;
        return (Math.abs(x) + Math.abs(y) < 0.6
          ? paint(0.95, 0.8, 0.1, ID.trafficSign)
          : paint(0.95, 0.95, 0.95, ID.trafficSign)),
          true;
    }
  };
}

function lightDraw(rng: Rng): Billboard["draw"] {
  const lit = rng.int(3); // 0 red (top), 1 amber, 2 green
  const housing = rng.next() < 0.3 ? [0.7, 0.6, 0.1] : [0.1, 0.1, 0.1];
  const on: RGB[] = [[1, 0.15, 0.1], [1, 0.75, 0.1], [0.2, 1, 0.5]];
  return (u, v, xm, ym) => {
    for (let k = 0; k < 3; k++) {
      const cy = 0.8 - 0.3 * k;
      if (Math.hypot(u - 0.5, (v - cy) * 2.6) < 0.32) {
        if (k === lit) return paint(on[k][0], on[k][1], on[k][2], ID.trafficLight), true;
        return paint(0.05 + 0.1 * on[k][0], 0.05 + 0.1 * on[k][1], 0.05 + 0.1 * on[k][2], ID.trafficLight),
          true;
      }
    }
    const rim = Math.min(u, 1 - u) < 0.08 ? 0.7 : 1;
    return paint(
      housing[0] * rim + 0.03 * vnoise(xm * 40, ym * 40, 7),
      housing[1] * rim,
      housing[2] * rim,
      ID.trafficLight,
    ),
      true;
  };
}

function treeTrunk(rng: Rng): Billboard["draw"] {
  const bark = jitter(rng, [0.3, 0.24, 0.18], 0.05);
  const seed = rng.int(1 << 30);
  return (u, _v, xm, ym) => {
    const k = 0.6 + 0.5 * Math.sin(Math.PI * u) + 0.2 * vnoise(xm * 30, ym * 4, seed);
    return paint(bark[0] * k, bark[1] * k, bark[2] * k, ID.vegetation), true;
  };
}

function leaves(xm: number, ym: number, seed: number, leaf: RGB, depthK: number): void {
  const n1 = fbm(xm * 2.2, ym * 2.2, seed, 2), n2 = vnoise(xm * 9, ym * 9, seed + 5);
  const k = (0.55 + 0.7 * n1) * (0.8 + 0.4 * n2) * depthK;
  paint(leaf[0] * k, leaf[1] * k, leaf[2] * k * 0.9, ID.vegetation);
}

function treeCrown(rng: Rng, leaf: RGB): Billboard["draw"] {
  const seed = rng.int(1 << 30);
  const c = jitter(rng, leaf, 0.05);
  return (u, v, xm, ym) => {
    const x = u * 2 - 1, y = v * 2 - 1;
    const ang = Math.atan2(y, x);
    const edge = 0.72 + 0.28 * fbm(Math.cos(ang) * 2 + 5, Math.sin(ang) * 2 + 5, seed, 2);
    const r = Math.hypot(x, y);
    if (r > edge) return false;
    if (r > 0.3 && vnoise(xm * 4, ym * 4, seed + 9) < 0.12) return false; // gaps in the foliage
    leaves(xm, ym, seed, c, 1 - 0.25 * y * (y < 0 ? -1 : 0.3));
    return true;
  };
}

function binDraw(rng: Rng): Billboard["draw"] {
  const c = pick(rng, [[0.2, 0.35, 0.25], [0.4, 0.4, 0.42], [0.6, 0.3, 0.1]] as RGB[]);
  return (u, v) => {
    if (v > 0.92) return Math.min(u, 1 - u) > 0.02 ? (paint(0.15, 0.15, 0.15, ID.static), true) : false;
    const k = 0.8 + 0.3 * Math.sin(Math.PI * u);
    return paint(c[0] * k, c[1] * k, c[2] * k, ID.static), true;
  };
}

// ---------------------------------------------------------------------------------------------------
// scene layout

function makeScene(rng: Rng): Scene {
  const seed = rng.int(1 << 30);
  const laneW = rng.uniform(3.0, 3.6);
  const nLanes = 2 + rng.int(3); // 2..4 lanes
  const camLane = rng.int(nLanes);
  const roadL = (camLane + 0.5) * laneW, roadR = (nLanes - camLane - 0.5) * laneW;
  const lanes: number[] = [];
  for (let k = 1; k < nLanes; k++) lanes.push(-roadL + k * laneW);
  const tramX = nLanes >= 3 && rng.next() < 0.35 ? lanes[Math.floor(lanes.length / 2)] + laneW / 2 : null;
  const lawn = rng.next() < 0.45 ? rng.uniform(0.8, 2.5) : 0;
  const walk = rng.uniform(2.0, 4.5);
  const zEnd = rng.uniform(55, 160);
  const weather = rng.int(3); // 0 clear, 1 overcast, 2 evening
  const skyTop: RGB = weather === 0
    ? jitter(rng, [0.3, 0.5, 0.85], 0.05)
    : weather === 1
    ? jitter(rng, [0.66, 0.68, 0.72], 0.04)
    : jitter(rng, [0.3, 0.36, 0.62], 0.05);
  const skyHorizon: RGB = weather === 0
    ? jitter(rng, [0.72, 0.82, 0.95], 0.03)
    : weather === 1
    ? jitter(rng, [0.86, 0.87, 0.88], 0.03)
    : jitter(rng, [0.98, 0.72, 0.45], 0.04);
  const leaf: RGB = rng.next() < 0.15
    ? jitter(rng, [0.55, 0.42, 0.12], 0.05)
    : jitter(rng, [0.2, 0.36, 0.12], 0.04);
  const s: Scene = {
    camH: rng.uniform(1.25, 1.6),
    f: rng.uniform(0.95, 1.15),
    cx: 0.5 + rng.uniform(-0.06, 0.06),
    cy: rng.uniform(0.38, 0.47),
    roadL,
    roadR,
    laneW,
    lanes,
    tramX,
    lawn,
    walk,
    zEnd,
    endHeight: rng.next() < 0.75 ? rng.uniform(8, 30) : 0,
    endColor: jitter(rng, pick(rng, FACADES), 0.05),
    planes: [],
    parkZ: [],
    objects: [],
    asphalt: jitter(rng, [0.36, 0.36, 0.38], 0.05),
    paving: jitter(
      rng,
      pick(rng, [[0.6, 0.6, 0.6], [0.66, 0.6, 0.52], [0.6, 0.45, 0.42], [0.5, 0.5, 0.52]] as RGB[]),
      0.03,
    ),
    tile: rng.uniform(0.3, 0.6),
    grass: jitter(rng, [0.38, 0.5, 0.22], 0.05),
    leaf,
    skyTop,
    skyHorizon,
    cloud: weather === 1 ? 0.1 : rng.uniform(0.2, 0.8),
    sun: rng.next() < 0.5 ? -1 : 1,
    shadow: weather === 1 ? 0 : rng.uniform(0, 9),
    exposure: rng.uniform(0.7, 1.2),
    tint: weather === 2 ? [1.08, 0.98, 0.86] : jitter(rng, [1, 1, 1], 0.04),
    haze: rng.uniform(0.002, 0.012),
    hood: rng.next() < 0.7 ? rng.uniform(0.06, 0.12) : 0,
    hoodColor: jitter(rng, pick(rng, CAR_COLORS), 0.03),
    seed,
  };
  layoutSides(rng, s);
  layoutObjects(rng, s);
  return s;
}

function edgeX(s: Scene, side: -1 | 1): number {
  return side < 0 ? s.roadL : s.roadR;
}

function layoutSides(rng: Rng, s: Scene) {
  for (const side of [-1, 1] as const) {
    const front = edgeX(s, side) + s.lawn + s.walk;
    let z = rng.uniform(-5, 2);
    while (z < s.zEnd) {
      const len = rng.uniform(10, 35);
      const z0 = z, z1 = Math.min(z + len, s.zEnd + 1);
      const r = rng.next();
      const plane = (
        kind: SidePlane["kind"],
        x: number,
        height: number,
        color: RGB,
        style = 0,
      ): SidePlane => ({
        side,
        x,
        z0,
        z1,
        height,
        kind,
        color,
        seed: rng.int(1 << 30),
        floorH: rng.uniform(3, 3.8),
        winSpacing: rng.uniform(2.0, 3.4),
        winW: rng.uniform(0.35, 0.6),
        winH: rng.uniform(0.4, 0.6),
        style,
      });
      if (r < 0.68) {
        s.planes.push(
          plane(
            "building",
            front + rng.uniform(0, 1.5),
            rng.uniform(9, 26),
            jitter(rng, pick(rng, FACADES), 0.05),
            rng.int(3),
          ),
        );
        if (rng.next() < 0.12) {
          s.planes.push(plane("fence", front - 0.3, rng.uniform(1, 1.8), [0.2, 0.22, 0.2], rng.int(3)));
        }
      } else {
        // a park: grass beyond the sidewalk, a wall or fence or hedge at its edge, trees, buildings far behind
        s.parkZ.push([z0, z1, side]);
        const edge = rng.next();
        if (edge < 0.4) {
          s.planes.push(
            plane(
              "wall",
              front,
              rng.uniform(0.8, 2.4),
              jitter(
                rng,
                pick(rng, [[0.6, 0.6, 0.58], [0.7, 0.66, 0.58], [0.55, 0.35, 0.28]] as RGB[]),
                0.04,
              ),
              rng.int(2),
            ),
          );
        } else if (edge < 0.75) {
          s.planes.push(
            plane(
              "fence",
              front,
              rng.uniform(1, 2.2),
              jitter(
                rng,
                pick(rng, [[0.15, 0.17, 0.15], [0.45, 0.45, 0.47], [0.45, 0.32, 0.2]] as RGB[]),
                0.03,
              ),
              rng.int(3),
            ),
          );
        }
        s.planes.push(plane("hedge", front + rng.uniform(2, 10), rng.uniform(3, 12), s.leaf));
        s.planes.push(
          plane(
            "building",
            front + rng.uniform(25, 45),
            rng.uniform(12, 30),
            jitter(rng, pick(rng, FACADES), 0.05),
            rng.int(3),
          ),
        );
      }
      z = z1;
    }
  }
}

function laneCenters(s: Scene): number[] {
  const out: number[] = [];
  for (let x = -s.roadL + s.laneW / 2; x < s.roadR; x += s.laneW) out.push(x);
  return out;
}

function addBillboard(s: Scene, x: number, z: number, w: number, h: number, draw: Billboard["draw"], y0 = 0) {
  s.objects.push({ x, z, w, h, y0, draw });
}

function layoutObjects(rng: Rng, s: Scene) {
  const lanes = laneCenters(s);
  const free = (x: number, z: number, w: number) =>
    !s.objects.some((o) => Math.abs(o.z - z) < 6 && Math.abs(o.x - x) < (o.w + w) / 2 + 0.3 && o.y0 === 0);
  // traffic in the lanes (left lanes oncoming when there are 3+ lanes)
  for (const lx of lanes) {
    const oncoming = lanes.length >= 3 && lx < -s.laneW;
    const n = rng.int(4);
    for (let k = 0; k < n; k++) {
      const z = rng.uniform(7, Math.min(90, s.zEnd - 5));
      const x = lx + rng.uniform(-0.4, 0.4);
      if (s.tramX !== null && Math.abs(x - s.tramX) < 1.5 && rng.next() < 0.5) continue;
      const r = rng.next();
      if (r < 0.1 && free(x, z, 2.5)) addBillboard(s, x, z, 2.5, rng.uniform(3.2, 3.9), truckRear(rng));
      else if (r < 0.17 && free(x, z, 2.55)) addBillboard(s, x, z, 2.55, rng.uniform(3.0, 3.3), busRear(rng));
      else if (r < 0.29 && free(x, z, 0.8)) {
        const motor = rng.next() < 0.4;
        addBillboard(
          s,
          x + rng.uniform(-1, 1),
          z,
          motor ? 0.85 : 0.7,
          motor ? 1.6 : 1.75,
          riderRear(rng, motor),
        );
      } else if (free(x, z, 1.9)) {
        const w = rng.uniform(1.7, 1.95);
        addBillboard(s, x, z, w, rng.uniform(1.4, 1.75), carRear(rng, oncoming));
      }
    }
  }
  if (s.tramX !== null && rng.next() < 0.6) {
    addBillboard(s, s.tramX, rng.uniform(12, 50), 2.4, 4.1, tram(rng, 4.1));
  }
  // parked cars along the kerb
  for (const side of [-1, 1] as const) {
    if (rng.next() < 0.55) {
      let z = rng.uniform(5, 15);
      const end = rng.uniform(25, 70);
      while (z < end) {
        const x = side * (edgeX(s, side) - 1.1);
        if (free(x, z, 1.9)) {
          const w = rng.uniform(1.7, 1.9);
          addBillboard(s, x, z, w, rng.uniform(1.4, 1.7), carRear(rng, false));
        }
        z += rng.uniform(5, 9);
      }
    }
  }
  // sidewalk furniture and people
  for (const side of [-1, 1] as const) {
    const kerb = edgeX(s, side), walkIn = kerb + s.lawn, walkOut = walkIn + s.walk;
    // poles with signs / lights, street lights
    for (let z = rng.uniform(4, 20); z < Math.min(s.zEnd, 120); z += rng.uniform(12, 30)) {
      const px = side * (kerb + 0.4 + (s.lawn ? s.lawn / 2 : 0.2));
      const h = rng.uniform(3.2, 8.5), w = rng.uniform(0.1, 0.22);
      addBillboard(s, px, z, w, h, poleDraw(rng));
      const r = rng.next();
      if (r < 0.4) {
        addBillboard(
          s,
          px,
          z - 0.05,
          rng.uniform(0.55, 0.8),
          rng.uniform(0.55, 0.8),
          signDraw(rng),
          Math.min(h - 0.6, rng.uniform(2.0, 2.8)),
        );
      } else if (r < 0.62) {
        addBillboard(s, px, z - 0.05, 0.36, 0.95, lightDraw(rng), Math.min(h - 1, rng.uniform(2.4, 3.3)));
      } else if (r < 0.78 && h > 6) {
        const arm = rng.uniform(1.2, 2.4);
        addBillboard(s, px - side * arm / 2, z, arm, 0.35, armDraw(side > 0), h - 0.35);
        if (rng.next() < 0.4) addBillboard(s, px - side * arm, z - 0.05, 0.36, 0.95, lightDraw(rng), h - 1.4);
      }
    }
    // trees along the kerb
    if (rng.next() < 0.6) {
      for (let z = rng.uniform(3, 12); z < Math.min(s.zEnd, 110); z += rng.uniform(7, 16)) {
        const tx = side * (kerb + (s.lawn ? s.lawn / 2 : 0.7));
        const crownR = rng.uniform(1.4, 3.0), base = rng.uniform(2.2, 3.5);
        addBillboard(s, tx, z + 0.1, rng.uniform(0.22, 0.4), base + crownR * 0.5, treeTrunk(rng));
        addBillboard(s, tx, z, crownR * 2, crownR * 2, treeCrown(rng, s.leaf), base);
      }
    }
    // pedestrians
    const nPeople = rng.int(7);
    for (let k = 0; k < nPeople; k++) {
      const z = rng.uniform(4, 60);
      const x = side * rng.uniform(walkIn + 0.3, walkOut - 0.3);
      const h = rng.uniform(1.5, 1.92);
      addBillboard(s, x, z, h * 0.34, h, person(rng));
      if (rng.next() < 0.25) {
        addBillboard(
          s,
          x + rng.uniform(0.5, 0.8),
          z + rng.uniform(-0.3, 0.3),
          h * 0.33,
          h * rng.uniform(0.92, 1.02),
          person(rng),
        );
      }
    }
    // parked two-wheelers and bins
    if (rng.next() < 0.35) {
      const z = rng.uniform(5, 35), x = side * rng.uniform(walkIn + 0.8, walkOut - 0.2);
      const n = 1 + rng.int(3);
      for (let k = 0; k < n; k++) addBillboard(s, x, z + k * 0.6, 1.7, 1.0, bicycleSide(rng));
    }
    if (rng.next() < 0.2) {
      addBillboard(
        s,
        side * rng.uniform(walkIn + 1, walkOut),
        rng.uniform(6, 30),
        2.0,
        1.1,
        motorcycleSide(rng),
      );
    }
    if (rng.next() < 0.4) addBillboard(s, side * (walkOut - 0.4), rng.uniform(5, 40), 0.6, 1.0, binDraw(rng));
  }
  // someone crossing the street
  if (rng.next() < 0.3) {
    const z = rng.uniform(8, 25);
    for (let k = 0, n = 1 + rng.int(3); k < n; k++) {
      const h = rng.uniform(1.55, 1.9);
      addBillboard(s, rng.uniform(-s.roadL, s.roadR), z + rng.uniform(-1, 1), h * 0.34, h, person(rng));
    }
  }
  s.objects.sort((a, b) => b.z - a.z); // far to near
}

// ---------------------------------------------------------------------------------------------------
// materials

function groundMaterial(s: Scene, X: number, Z: number) {
  const ax = Math.abs(X);
  const side: -1 | 1 = X < 0 ? -1 : 1;
  const kerb = edgeX(s, side);
  const seed = s.seed;
  if ((X >= -s.roadL && X <= s.roadR)) {
    // tram track: rails and the cobbled bed between them (rail track, a void class)
    if (s.tramX !== null && Math.abs(X - s.tramX) < 0.85) {
      const d = Math.abs(Math.abs(X - s.tramX) - 0.72);
      if (d < 0.05) return paint(0.55, 0.55, 0.57, ID.railTrack);
      const cob = (frac(X * 6) < 0.1 || frac(Z * 5) < 0.1) ? 0.7 : 1;
      const k = cob * (0.85 + 0.2 * hash3(Math.floor(X * 6), Math.floor(Z * 5), seed));
      return paint(s.asphalt[0] * 1.1 * k, s.asphalt[1] * 1.05 * k, s.asphalt[2] * k, ID.railTrack);
    }
    const big = fbm(X * 0.35, Z * 0.12, seed + 1, 2);
    let k = 0.85 + 0.12 * vnoise(X * 7, Z * 7, seed) + 0.12 * big;
    // tyre tracks: darker bands in each lane
    const inLane = frac((X + s.roadL) / s.laneW) * s.laneW;
    if (Math.abs(inLane - 0.9) < 0.35 || Math.abs(inLane - (s.laneW - 0.9)) < 0.35) k *= 0.93;
    // patches
    if (big > 0.7) k *= 0.85;
    // lane marks (part of the road class)
    let mark = false;
    if (Math.abs(X + s.roadL - 0.25) < 0.08 || Math.abs(X - s.roadR + 0.25) < 0.08) mark = true;
    for (const lx of s.lanes) if (Math.abs(X - lx) < 0.07 && frac(Z / 9) < 0.38) mark = true;
    if (mark && vnoise(X * 20, Z * 3, seed + 3) > 0.2) return paint(0.86, 0.86, 0.84, ID.road);
    return paint(s.asphalt[0] * k, s.asphalt[1] * k, s.asphalt[2] * k, ID.road);
  }
  // beyond the road: grass strip, kerb stone, sidewalk, then grass in parks
  const walkIn = kerb + s.lawn, walkOut = walkIn + s.walk;
  let park = false;
  if (ax > walkOut) {
    for (const pz of s.parkZ) if (pz[2] === side && Z >= pz[0] && Z < pz[1]) park = true;
  }
  if ((ax < walkIn && s.lawn > 0) || park) {
    const n = fbm(X * 1.5, Z * 1.5, seed + 4);
    const k = 0.75 + 0.45 * n + 0.15 * vnoise(X * 12, Z * 12, seed + 5);
    if (n < 0.3) return paint(0.45 * k, 0.38 * k, 0.28 * k, ID.terrain); // bare soil
    return paint(s.grass[0] * k, s.grass[1] * k, s.grass[2] * k, ID.terrain);
  }
  if (ax < kerb + 0.18 || (s.lawn > 0 && Math.abs(ax - walkIn) < 0.12)) {
    return paint(0.72, 0.72, 0.7, ID.sidewalk);
  }
  const t = s.tile;
  const gx = frac(X / t), gz = frac(Z / t);
  let k = 0.92 + 0.12 * hash3(Math.floor(X / t), Math.floor(Z / t), seed + 6) +
    0.06 * vnoise(X * 3, Z * 3, seed + 7);
  if (gx < 0.07 || gz < 0.07) k *= 0.78;
  return paint(s.paving[0] * k, s.paving[1] * k, s.paving[2] * k, ID.sidewalk);
}

/** Material of a side plane at depth Z and height Y (metres); false = see-through. */
function planeMaterial(s: Scene, p: SidePlane, Z: number, Y: number): boolean {
  const c = p.color;
  const light = p.side === s.sun ? 0.8 : 1.12; // the sun-facing facade is on the other side of the street
  switch (p.kind) {
    case "building": {
      // top edge: cornice; segment boundaries: a slight colour step from the seed
      if (Y > p.height - 0.4) {
        return paint(c[0] * 0.8 * light, c[1] * 0.8 * light, c[2] * 0.8 * light, ID.building), true;
      }
      const floor = Math.floor(Y / p.floorH), fy = frac(Y / p.floorH);
      const col = frac((Z - p.z0) / p.winSpacing);
      let k = light * (0.9 + 0.1 * vnoise(Z * 2, Y * 2, p.seed));
      if (
        p.style === 1 && (frac(Y / 0.25) < 0.12 || frac(Z / 0.5 + (Math.floor(Y / 0.25) % 2) * 0.5) < 0.06)
      ) k *= 0.85; // bricks
      if (floor === 0) {
        // ground floor: shop windows and doors
        if (fy > 0.12 && fy < 0.85 && frac((Z - p.z0) / (p.winSpacing * 2)) < 0.7) {
          const refl = 0.15 * fbm(Z * 0.8, Y * 3, p.seed + 1);
          return paint(0.12 + refl, 0.13 + refl, 0.16 + refl, ID.building), true;
        }
        k *= 0.85;
      } else if (
        col > 0.5 - p.winW / 2 && col < 0.5 + p.winW / 2 && fy > 0.35 - p.winH / 2 && fy < 0.35 + p.winH / 2
      ) {
        const frame = Math.min(col - (0.5 - p.winW / 2), 0.5 + p.winW / 2 - col) < 0.05 ||
          Math.min(fy - (0.35 - p.winH / 2), 0.35 + p.winH / 2 - fy) < 0.05;
        if (frame) return paint(0.85 * light, 0.85 * light, 0.82 * light, ID.building), true;
        const lit = hash3(Math.floor((Z - p.z0) / p.winSpacing), floor, p.seed) < 0.08;
        const sky = 0.12 + 0.25 * (1 - fy);
        return (lit
          ? paint(0.85, 0.75, 0.5, ID.building)
          : paint(0.1 + sky * 0.5, 0.12 + sky * 0.6, 0.16 + sky * 0.8, ID.building)),
          true;
      }
      return paint(c[0] * k, c[1] * k, c[2] * k, ID.building), true;
    }
    case "wall": {
      let k = light * (0.85 + 0.2 * fbm(Z * 1.2, Y * 1.2, p.seed));
      if (frac(Z / 2.5) < 0.02) k *= 0.7; // panel joints
      if (Y > p.height - 0.15) k *= 1.1; // coping
      return paint(c[0] * k, c[1] * k, c[2] * k, ID.wall), true;
    }
    case "fence": {
      const k = light * 0.95;
      if (p.style === 0) {
        // metal bars with rails
        if (frac(Z / 0.14) < 0.22 || Math.abs(Y - p.height + 0.08) < 0.05 || Math.abs(Y - 0.15) < 0.04) {
          return paint(c[0] * k, c[1] * k, c[2] * k, ID.fence), true;
        }
        return false;
      }
      if (p.style === 1) {
        // chain link: diamond grid
        const a = frac((Z + Y) / 0.12), b = frac((Z - Y) / 0.12);
        if (a < 0.16 || b < 0.16 || frac(Z / 3) < 0.02 || Y > p.height - 0.05) {
          return paint(c[0] * k + 0.2, c[1] * k + 0.2, c[2] * k + 0.2, ID.fence), true;
        }
        return false;
      }
      // wooden boards with gaps
      if (frac(Z / 0.2) < 0.8) {
        const n = 0.85 + 0.2 * vnoise(Z * 3, Y * 25, p.seed);
        return paint(c[0] * k * n, c[1] * k * n, c[2] * k * n, ID.fence), true;
      }
      return false;
    }
    case "hedge":
      leaves(Z, Y, p.seed, c, light * (0.75 + 0.25 * Y / p.height));
      return true;
  }
}

// ---------------------------------------------------------------------------------------------------
// rendering

/** The sample buffers of one rendering (ss x ss samples per output pixel). */
interface Frame {
  s: Scene;
  W: number;
  H: number;
  f: number;
  cx: number;
  cy: number;
  col: Float32Array;
  lab: Uint8Array;
  depth: Float32Array;
}

function put(fr: Frame, i: number, z: number) {
  fr.col[3 * i] = PAINT[0];
  fr.col[3 * i + 1] = PAINT[1];
  fr.col[3 * i + 2] = PAINT[2];
  fr.lab[i] = PAINT[3];
  fr.depth[i] = z;
}

/** Hedges have a bumpy top. */
function topOf(p: SidePlane, Z: number): number {
  return p.kind === "hedge" ? p.height * (0.75 + 0.35 * fbm(Z * 0.3, 0, p.seed + 3)) : p.height;
}

interface ColumnHit {
  p: SidePlane;
  z: number;
  top: number;
}

/** Ground, side planes, the far end and the sky, per sample. */
function backgroundPass(fr: Frame): void {
  const { s, W, H, f, cx, cy } = fr;
  // the facade across the far end of the street (textured in (X, Y) instead of (Z, Y))
  const endPlane: SidePlane = {
    side: s.sun === 1 ? -1 : 1, // lit like a facade facing the sun
    x: 0,
    z0: -1e9,
    z1: 1e9,
    height: s.endHeight,
    kind: "building",
    color: s.endColor,
    seed: s.seed + 17,
    floorH: 3.4,
    winSpacing: 2.6,
    winW: 0.5,
    winH: 0.5,
    style: 0,
  };
  // per column, the side planes that the column's rays meet, nearest first, with the depth and the top
  // height there: each sample then only walks this short list
  const colPlanes: ColumnHit[][] = [];
  for (let px = 0; px < W; px++) {
    const dx = (px + 0.5 - cx) / f;
    const list: ColumnHit[] = [];
    for (const p of s.planes) {
      if (dx * p.side <= 0) continue;
      const z = p.x / Math.abs(dx);
      if (z < p.z0 || z >= p.z1 || z > s.zEnd) continue;
      list.push({ p, z, top: topOf(p, z) });
    }
    list.sort((a, b) => a.z - b.z);
    colPlanes.push(list);
  }
  for (let py = 0; py < H; py++) {
    const dy = (py + 0.5 - cy) / f;
    for (let px = 0; px < W; px++) {
      const i = py * W + px;
      if (columnPlanes(fr, colPlanes[px], dy, i)) continue;
      const dx = (px + 0.5 - cx) / f;
      const zg = dy > 0 ? s.camH / dy : Infinity;
      if (zg < s.zEnd) {
        groundMaterial(s, dx * zg, zg);
        put(fr, i, zg);
      } else farAndSky(fr, endPlane, px, py, dx, dy, i);
    }
  }
}

function columnPlanes(fr: Frame, list: ColumnHit[], dy: number, i: number): boolean {
  for (let k = 0; k < list.length; k++) {
    const c = list[k];
    const Y = fr.s.camH - dy * c.z;
    if (Y < 0 || Y > c.top) continue;
    if (!planeMaterial(fr.s, c.p, c.z, Y)) continue; // see-through (fence gaps)
    put(fr, i, c.z);
    return true;
  }
  return false;
}

function farAndSky(
  fr: Frame,
  endPlane: SidePlane,
  px: number,
  py: number,
  dx: number,
  dy: number,
  i: number,
) {
  const { s, W, H } = fr;
  // the far end of the street: a facade across, or distant trees, or the open horizon
  const Ye = s.camH - dy * s.zEnd, Xe = dx * s.zEnd;
  if (s.endHeight > 0 && Ye >= 0 && Ye < s.endHeight) {
    planeMaterial(s, endPlane, Xe, Ye);
    put(fr, i, s.zEnd);
    return;
  }
  if (Ye >= 0 && Ye < 4 + 3 * fbm(Xe * 0.05, 0, s.seed + 11)) {
    leaves(Xe, Ye, s.seed + 12, s.leaf, 0.9);
    put(fr, i, s.zEnd * 1.5);
    return;
  }
  if (dy > 0) {
    const zg = s.camH / dy;
    groundMaterial(s, Math.sign(dx) * 100, zg);
    put(fr, i, zg);
    return;
  }
  // sky: gradient and clouds
  const t = clamp01(-dy * 2.2);
  const cl = fbm(px / W * 5 + s.seed % 97, py / H * 10, s.seed + 13, 3);
  const cloud = clamp01((cl - (1 - s.cloud * 0.5)) * 4);
  const r = s.skyHorizon[0] + (s.skyTop[0] - s.skyHorizon[0]) * t;
  const g = s.skyHorizon[1] + (s.skyTop[1] - s.skyHorizon[1]) * t;
  const b = s.skyHorizon[2] + (s.skyTop[2] - s.skyHorizon[2]) * t;
  const cw = 0.8 + 0.2 * cl;
  paint(r + (cw - r) * cloud, g + (cw - g) * cloud, b + (cw - b) * cloud, ID.sky);
  put(fr, i, 1e4);
}

/** The facade on the sun's side shades a band of the ground next to it. */
function shadowPass(fr: Frame): void {
  const { s, W, H, f, cx, cy, col, lab } = fr;
  if (s.shadow <= 0) return;
  const outer = s.sun > 0 ? -(s.roadL + s.lawn + s.walk) : s.roadR + s.lawn + s.walk;
  for (let py = Math.max(0, Math.ceil(cy)); py < H; py++) {
    const dy = (py + 0.5 - cy) / f;
    if (dy <= 0) continue;
    const zg = s.camH / dy;
    for (let px = 0; px < W; px++) {
      const i = py * W + px;
      const l = lab[i];
      if (l !== ID.road && l !== ID.sidewalk && l !== ID.terrain && l !== ID.railTrack) continue;
      const X = ((px + 0.5 - cx) / f) * zg;
      if (Math.abs(X - outer) < s.shadow && (X < 0) === (outer < 0)) {
        col[3 * i] *= 0.55;
        col[3 * i + 1] *= 0.58;
        col[3 * i + 2] *= 0.66;
      }
    }
  }
}

/** Objects, far to near, each with a contact shadow. */
function objectPass(fr: Frame): void {
  const { s, W, H, f, cx, cy, col, lab, depth } = fr;
  for (const o of s.objects) {
    if (o.z < 0.5) continue;
    const x0 = cx + (f * (o.x - o.w / 2)) / o.z, x1 = cx + (f * (o.x + o.w / 2)) / o.z;
    const yTop = cy + (f * (s.camH - o.y0 - o.h)) / o.z, yBot = cy + (f * (s.camH - o.y0)) / o.z;
    const ax = Math.max(0, Math.floor(x0)), bx = Math.min(W - 1, Math.ceil(x1));
    const ay = Math.max(0, Math.floor(yTop)), by = Math.min(H - 1, Math.ceil(yBot));
    if (o.y0 === 0 && o.w > 0.4) {
      const sy = Math.min(H - 1, Math.ceil(yBot + (f * 0.25) / o.z));
      for (let py = Math.max(0, Math.floor(yBot - 1)); py <= sy; py++) {
        for (let px = ax; px <= bx; px++) {
          const i = py * W + px;
          const l = lab[i];
          if (depth[i] >= o.z - 0.5 && (l === ID.road || l === ID.sidewalk || l === ID.terrain)) {
            col[3 * i] *= 0.6;
            col[3 * i + 1] *= 0.6;
            col[3 * i + 2] *= 0.62;
          }
        }
      }
    }
    const draw = o.draw;
    for (let py = ay; py <= by; py++) {
      const v = (yBot - (py + 0.5)) / (yBot - yTop);
      if (v < 0 || v > 1) continue;
      for (let px = ax; px <= bx; px++) {
        const u = (px + 0.5 - x0) / (x1 - x0);
        if (u < 0 || u > 1) continue;
        if (draw(u, v, u * o.w, v * o.h)) put(fr, py * W + px, o.z);
      }
    }
  }
}

/** The ego vehicle's hood at the bottom (a void class: ignored in training). */
function hoodPass(fr: Frame): void {
  const { s, W, H } = fr;
  if (s.hood <= 0) return;
  for (let px = 0; px < W; px++) {
    const t = (px + 0.5) / W - 0.5;
    const top = H * (1 - s.hood * (1 - 1.6 * t * t));
    for (let py = Math.max(0, Math.floor(top)); py < H; py++) {
      const k = 0.5 + 0.4 * (1 - (py - top) / (H - top + 1)) + 0.15 * Math.exp(-t * t * 30);
      paint(s.hoodColor[0] * k, s.hoodColor[1] * k, s.hoodColor[2] * k, ID.ego);
      put(fr, py * W + px, 1);
    }
  }
}

/** Haze by depth, exposure and tint; box filter to the output size with sensor noise; centre-sample labels. */
function finishPass(fr: Frame, width: number, height: number, ss: number, noiseAmp: number): SceneImage {
  const { s, W, H, col, lab, depth } = fr;
  const hz = s.skyHorizon, ex = s.exposure, t0 = s.tint[0] * ex, t1 = s.tint[1] * ex, t2 = s.tint[2] * ex;
  for (let i = 0; i < W * H; i++) {
    const a = lab[i] === ID.sky ? 0 : 1 - Math.exp(-depth[i] * s.haze);
    col[3 * i] = (col[3 * i] * (1 - a) + hz[0] * a) * t0;
    col[3 * i + 1] = (col[3 * i + 1] * (1 - a) + hz[1] * a) * t1;
    col[3 * i + 2] = (col[3 * i + 2] * (1 - a) + hz[2] * a) * t2;
  }
  const rgb = new Uint8Array(width * height * 3);
  const labelIds = new Uint8Array(width * height);
  const scale = 255 / (ss * ss);
  const centre = Math.floor(ss / 2);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = y * width + x;
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let j = 0; j < ss; j++) {
          const row = ((y * ss + j) * W + x * ss) * 3 + c;
          for (let k = 0; k < ss; k++) acc += col[row + 3 * k];
        }
        const n = (hash3(x, y * 3 + c, s.seed + 99) - 0.5) * 2 * noiseAmp;
        const v = Math.round(acc * scale + n);
        rgb[3 * o + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
      labelIds[o] = lab[(y * ss + centre) * W + x * ss + centre];
    }
  }
  return { width, height, rgb, labelIds };
}

/**
 * Renders one scene drawn from `rng` at width x height (colour with ss x ss samples per pixel).
 * @returns rgb [height, width, 3] uint8 and labelIds [height, width] uint8 (Cityscapes label ids)
 */
export function renderStreetScene(rng: Rng, width: number, height: number, ss = 2): SceneImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 8 || height < 8) {
    throw new Error(`renderStreetScene: size must be integers >= 8, got ${width}x${height}`);
  }
  const s = makeScene(rng);
  const W = width * ss, H = height * ss;
  const fr: Frame = {
    s,
    W,
    H,
    f: s.f * W,
    cx: s.cx * W,
    cy: s.cy * H,
    col: new Float32Array(W * H * 3),
    lab: new Uint8Array(W * H),
    depth: new Float32Array(W * H),
  };
  backgroundPass(fr);
  shadowPass(fr);
  objectPass(fr);
  hoodPass(fr);
  return finishPass(fr, width, height, ss, rng.fork("sensor-noise").uniform(1, 4));
}
