/**
 * Normal (defect-free) renderings of the synthetic products: three textures and three
 * objects, each with natural variation (pose, lighting, colour, sensor noise) drawn from a
 * seeded Rng. Pixels are float RGB in [0, 255], [S, S, 3].
 */
import type { Rng } from '../io/prng.js';

export const TEXTURE_PRODUCTS = ['carpet', 'wood', 'grid'] as const;
export const OBJECT_PRODUCTS = ['bottle', 'screw', 'pill'] as const;
export const SYNTH_PRODUCTS = [...TEXTURE_PRODUCTS, ...OBJECT_PRODUCTS] as const;
export type SynthProduct = (typeof SYNTH_PRODUCTS)[number];

export interface Rendering {
  size: number;
  /** [S, S, 3] float RGB. */
  rgb: Float32Array;
  /** Objects only: the background alone ([S, S, 3]) and where the object is ([S, S] 0/1). */
  background?: Float32Array;
  object?: Uint8Array;
}

type Rgb = [number, number, number];

interface Lighting {
  gain: number;
  gx: number;
  gy: number;
}

function lighting(rng: Rng): Lighting {
  const angle = rng.uniform(0, 2 * Math.PI);
  const strength = rng.uniform(0, 0.12);
  return {
    gain: rng.uniform(0.9, 1.1),
    gx: Math.cos(angle) * strength,
    gy: Math.sin(angle) * strength,
  };
}

/** Fills every pixel from shade(x, y) → colour, then applies lighting and sensor noise. */
function paint(
  size: number,
  rng: Rng,
  light: Lighting,
  noise: number,
  shade: (x: number, y: number, out: Rgb) => void,
): Float32Array {
  const rgb = new Float32Array(size * size * 3);
  const c: Rgb = [0, 0, 0];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      shade(x, y, c);
      const l = light.gain * (1 + light.gx * (x / size - 0.5) + light.gy * (y / size - 0.5));
      const o = (y * size + x) * 3;
      for (let k = 0; k < 3; k++) rgb[o + k] = c[k] * l + noise * (rng.next() + rng.next() - 1);
    }
  }
  return rgb;
}

function jitterColour(rng: Rng, base: Rgb, amount: number): Rgb {
  return base.map((v) => v + rng.uniform(-amount, amount)) as Rgb;
}

function carpet(size: number, rng: Rng): Rendering {
  const cell = Math.max(4, Math.round(size / rng.uniform(22, 26)));
  const ox = rng.int(0, cell * 2);
  const oy = rng.int(0, cell * 2);
  const colour = jitterColour(rng, [150, 70, 55], 10);
  const light = lighting(rng);
  const rgb = paint(size, rng, light, 6, (x, y, out) => {
    const cx = Math.floor((x + ox) / cell);
    const cy = Math.floor((y + oy) / cell);
    const along = (((cx + cy) & 1) === 0 ? (y + oy) % cell : (x + ox) % cell) / cell;
    const v = 0.65 + 0.35 * Math.sin(Math.PI * along);
    for (let k = 0; k < 3; k++) out[k] = colour[k] * v;
  });
  return { size, rgb };
}

function wood(size: number, rng: Rng): Rendering {
  const angle = rng.uniform(-0.15, 0.15) + Math.PI / 2;
  const period = size / rng.uniform(14, 18);
  const phase = rng.uniform(0, 2 * Math.PI);
  const warp = rng.uniform(4, 9);
  const light = lighting(rng);
  const [ca, sa] = [Math.cos(angle), Math.sin(angle)];
  const dark = jitterColour(rng, [120, 78, 45], 8);
  const bright = jitterColour(rng, [196, 148, 98], 8);
  const rgb = paint(size, rng, light, 4, (x, y, out) => {
    const u = x * ca + y * sa;
    const v = -x * sa + y * ca;
    const t = (v + warp * Math.sin(u / (size * 0.12) + phase)) / period;
    const ring = Math.pow(0.5 + 0.5 * Math.sin(2 * Math.PI * t), 3);
    for (let k = 0; k < 3; k++) out[k] = bright[k] + (dark[k] - bright[k]) * ring;
  });
  return { size, rgb };
}

function grid(size: number, rng: Rng): Rendering {
  const angle = rng.uniform(-0.05, 0.05);
  const pitch = size / rng.uniform(11, 13);
  const ox = rng.uniform(0, pitch);
  const oy = rng.uniform(0, pitch);
  const width = Math.max(1.5, size / 110);
  const light = lighting(rng);
  const wire = rng.uniform(170, 200);
  const back = rng.uniform(35, 50);
  const [ca, sa] = [Math.cos(angle), Math.sin(angle)];
  const rgb = paint(size, rng, light, 5, (x, y, out) => {
    const u = x * ca + y * sa + ox;
    const v = -x * sa + y * ca + oy;
    const du = Math.abs((((u % pitch) + pitch) % pitch) - pitch / 2);
    const dv = Math.abs((((v % pitch) + pitch) % pitch) - pitch / 2);
    const edge = Math.min(pitch / 2 - du, pitch / 2 - dv);
    const on = Math.min(1, Math.max(0, width - edge));
    out[0] = out[1] = out[2] = back + (wire - back) * on;
  });
  return { size, rgb };
}

/** Coordinates along and across a direction `angle` (radians) around the centre (cx, cy). */
function rotation(
  cx: number,
  cy: number,
  angle: number,
): (x: number, y: number) => [number, number] {
  const [ca, sa] = [Math.cos(angle), Math.sin(angle)];
  return (x, y) => [(x - cx) * ca + (y - cy) * sa, -(x - cx) * sa + (y - cy) * ca];
}

/** Objects: render the background, then the object over it where inside(x, y). */
function object(
  size: number,
  rng: Rng,
  back: Rgb,
  inside: (x: number, y: number) => boolean,
  shade: (x: number, y: number, out: Rgb) => void,
): Rendering {
  const light = lighting(rng);
  const noiseless = { ...light };
  const background = paint(size, rng, noiseless, 3, (_x, _y, out) => {
    out[0] = back[0];
    out[1] = back[1];
    out[2] = back[2];
  });
  const obj = new Uint8Array(size * size);
  const body = paint(size, rng, light, 4, (x, y, out) => {
    if (inside(x, y)) shade(x, y, out);
    else out[0] = out[1] = out[2] = 0;
  });
  const rgb = background.slice();
  for (let i = 0; i < size * size; i++) {
    if (!inside(i % size, Math.floor(i / size))) continue;
    obj[i] = 1;
    for (let k = 0; k < 3; k++) rgb[i * 3 + k] = body[i * 3 + k];
  }
  return { size, rgb, background, object: obj };
}

function bottle(size: number, rng: Rng): Rendering {
  const cx = size * (0.5 + rng.uniform(-0.03, 0.03));
  const cy = size * (0.5 + rng.uniform(-0.03, 0.03));
  const r = size * rng.uniform(0.36, 0.39);
  const glass = jitterColour(rng, [70, 95, 60], 6);
  return object(
    size,
    rng,
    jitterColour(rng, [25, 25, 28], 4),
    (x, y) => (x - cx) ** 2 + (y - cy) ** 2 < r * r,
    (x, y, out) => {
      const d = Math.hypot(x - cx, y - cy) / r;
      const v = d < 0.35 ? 0.35 : 0.8 + 0.6 * Math.exp(-(((d - 0.8) / 0.08) ** 2));
      for (let k = 0; k < 3; k++) out[k] = glass[k] * v + (d > 0.35 && d < 0.5 ? 30 : 0);
    },
  );
}

function screw(size: number, rng: Rng): Rendering {
  const angle = rng.uniform(0, 2 * Math.PI);
  const cx = size * (0.5 + rng.uniform(-0.05, 0.05));
  const cy = size * (0.5 + rng.uniform(-0.05, 0.05));
  const half = size * rng.uniform(0.28, 0.31);
  const radius = size * 0.055;
  const head = size * 0.09;
  const pitch = size * 0.035;
  const metal = rng.uniform(95, 115);
  const local = rotation(cx, cy, angle);
  return object(
    size,
    rng,
    jitterColour(rng, [215, 215, 210], 5),
    (x, y) => {
      const [u, v] = local(x, y);
      const shaft =
        Math.abs(u) < half &&
        Math.abs(v) < radius * (u > half - radius * 2 ? (half - u) / (radius * 2) + 0.2 : 1);
      return shaft || (u + half) ** 2 / (head * 0.5) ** 2 + v ** 2 / head ** 2 < 1;
    },
    (x, y, out) => {
      const [u, v] = local(x, y);
      const thread = u > -half + head * 0.5 ? 0.75 + 0.25 * Math.sin((2 * Math.PI * u) / pitch) : 1;
      const round = 1 - 0.5 * (v / radius) ** 2;
      out[0] = out[1] = out[2] = metal * thread * Math.max(0.4, round) + 20;
    },
  );
}

function pill(size: number, rng: Rng): Rendering {
  const cx = size * (0.5 + rng.uniform(-0.02, 0.02));
  const cy = size * (0.5 + rng.uniform(-0.02, 0.02));
  const angle = rng.uniform(-0.06, 0.06);
  const [a, b] = [size * rng.uniform(0.36, 0.38), size * rng.uniform(0.17, 0.19)];
  const specks = Array.from({ length: rng.int(10, 18) }, () => {
    const t = rng.uniform(0, 2 * Math.PI);
    const s = Math.sqrt(rng.next()) * 0.8;
    return [s * a * Math.cos(t), s * b * Math.sin(t), rng.uniform(1.2, 2.4) * (size / 256)];
  });
  const white = jitterColour(rng, [225, 222, 210], 5);
  const local = rotation(cx, cy, angle);
  return object(
    size,
    rng,
    jitterColour(rng, [20, 20, 22], 3),
    (x, y) => {
      const [u, v] = local(x, y);
      return (u / a) ** 2 + (v / b) ** 2 < 1;
    },
    (x, y, out) => {
      const [u, v] = local(x, y);
      const shade = 1 - 0.25 * ((u / a) ** 2 + (v / b) ** 2);
      const speck = specks.some(([su, sv, sr]) => (u - su) ** 2 + (v - sv) ** 2 < sr * sr);
      const c: Rgb = speck ? [170, 45, 40] : white;
      for (let k = 0; k < 3; k++) out[k] = c[k] * shade;
    },
  );
}

const RENDERERS = { carpet, wood, grid, bottle, screw, pill } satisfies Record<
  SynthProduct,
  (size: number, rng: Rng) => Rendering
>;

/** Renders one normal sample of a product. */
export function renderProduct(product: SynthProduct, size: number, rng: Rng): Rendering {
  return RENDERERS[product](size, rng);
}
