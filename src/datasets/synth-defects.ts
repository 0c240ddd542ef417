/**
 * Defects drawn onto a synthetic rendering. Each one edits the float image in place; the
 * ground-truth mask is derived afterwards from the quantised before/after images, so it is
 * exactly the set of changed pixels (synth.ts).
 */
import type { Rng } from '../io/prng.js';
import type { Rendering } from './synth-products.js';

export const DEFECT_KINDS = ['scratch', 'hole', 'stain', 'crack', 'missing'] as const;
export type DefectKind = (typeof DEFECT_KINDS)[number];

/** Defects that make sense for a product: 'missing' needs an object to remove part of. */
export function defectsFor(isObject: boolean): DefectKind[] {
  return isObject ? [...DEFECT_KINDS] : DEFECT_KINDS.filter((d) => d !== 'missing');
}

type Rgb = [number, number, number];

class Painter {
  constructor(
    private readonly r: Rendering,
    /** Only these pixels may change (the object, for objects). */
    private readonly allowed: Uint8Array | undefined,
  ) {}

  get size(): number {
    return this.r.size;
  }

  colourAt(x: number, y: number): Rgb {
    const o = (Math.round(y) * this.size + Math.round(x)) * 3;
    return [this.r.rgb[o], this.r.rgb[o + 1], this.r.rgb[o + 2]];
  }

  /** Blends colour into pixel (x, y) with weight alpha ∈ [0, 1]. */
  blend(x: number, y: number, colour: Rgb, alpha: number): void {
    const s = this.size;
    if (x < 0 || y < 0 || x >= s || y >= s) return;
    const i = y * s + x;
    if (this.allowed && !this.allowed[i]) return;
    for (let k = 0; k < 3; k++)
      this.r.rgb[i * 3 + k] += (colour[k] - this.r.rgb[i * 3 + k]) * alpha;
  }

  /** Sets every pixel within radius of (cx, cy) via f(x, y, distance). */
  disc(cx: number, cy: number, radius: number, f: (x: number, y: number, d: number) => void): void {
    for (let y = Math.floor(cy - radius); y <= Math.ceil(cy + radius); y++) {
      for (let x = Math.floor(cx - radius); x <= Math.ceil(cx + radius); x++) {
        const d = Math.hypot(x - cx, y - cy);
        if (d <= radius) f(x, y, d);
      }
    }
  }

  /** A hard-edged thick polyline stroke. */
  stroke(points: [number, number][], width: number, colour: Rgb): void {
    const stamped = new Set<number>();
    for (let p = 1; p < points.length; p++) {
      const [x0, y0] = points[p - 1];
      const [x1, y1] = points[p];
      const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 2));
      for (let s = 0; s <= steps; s++) {
        const t = s / steps;
        this.disc(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, width / 2, (x, y) => {
          const key = y * this.size + x;
          if (stamped.has(key)) return;
          stamped.add(key);
          this.blend(x, y, colour, 1);
        });
      }
    }
  }
}

/** A random point on the object (objects) or anywhere away from the border (textures). */
function anchor(r: Rendering, rng: Rng, margin: number): [number, number] {
  const s = r.size;
  for (let attempt = 0; attempt < 1000; attempt++) {
    const x = rng.uniform(margin, s - margin);
    const y = rng.uniform(margin, s - margin);
    if (!r.object || r.object[Math.round(y) * s + Math.round(x)]) return [x, y];
  }
  return [s / 2, s / 2];
}

function scratch(p: Painter, r: Rendering, rng: Rng): void {
  const s = r.size;
  const [mx, my] = anchor(r, rng, s * 0.15);
  const angle = rng.uniform(0, 2 * Math.PI);
  const length = s * (r.object ? rng.uniform(0.12, 0.22) : rng.uniform(0.2, 0.35));
  // Centred on the anchor, so an object's scratch mostly stays on the object.
  const [x0, y0] = [mx - (Math.cos(angle) * length) / 2, my - (Math.sin(angle) * length) / 2];
  const bend = length * rng.uniform(-0.35, 0.35);
  const [x2, y2] = [x0 + Math.cos(angle) * length, y0 + Math.sin(angle) * length];
  const [x1, y1] = [(x0 + x2) / 2 - Math.sin(angle) * bend, (y0 + y2) / 2 + Math.cos(angle) * bend];
  const points: [number, number][] = [];
  for (let i = 0; i <= 40; i++) {
    const t = i / 40;
    points.push([
      (1 - t) ** 2 * x0 + 2 * (1 - t) * t * x1 + t * t * x2,
      (1 - t) ** 2 * y0 + 2 * (1 - t) * t * y1 + t * t * y2,
    ]);
  }
  const base = p.colourAt(mx, my);
  const mean = (base[0] + base[1] + base[2]) / 3;
  const colour: Rgb = mean < 128 ? [235, 235, 230] : [25, 25, 30];
  p.stroke(points, Math.max(1.5, s * rng.uniform(0.008, 0.014)), colour);
}

function hole(p: Painter, r: Rendering, rng: Rng): void {
  const s = r.size;
  const radius = s * rng.uniform(0.025, 0.05);
  const [cx, cy] = anchor(r, rng, s * 0.1);
  const rim = Math.max(1.5, radius * 0.3);
  p.disc(cx, cy, radius + rim, (x, y, d) => {
    if (d <= radius) p.blend(x, y, [8, 6, 6], 0.92);
    else p.blend(x, y, [240, 235, 220], 0.55);
  });
}

function stain(p: Painter, r: Rendering, rng: Rng): void {
  const s = r.size;
  const r0 = s * rng.uniform(0.05, 0.09);
  const [cx, cy] = anchor(r, rng, s * 0.12);
  const [f1, f2] = [rng.uniform(0, 2 * Math.PI), rng.uniform(0, 2 * Math.PI)];
  const colour = rng.pick<Rgb>([
    [60, 120, 30],
    [30, 40, 140],
    [200, 170, 20],
  ]);
  p.disc(cx, cy, r0 * 1.5, (x, y, d) => {
    const theta = Math.atan2(y - cy, x - cx);
    const edge = r0 * (1 + 0.25 * Math.sin(3 * theta + f1) + 0.15 * Math.sin(5 * theta + f2));
    if (d >= edge) return;
    // Soft inside, but never fainter than 0.4 so the stain's border is a visible edge.
    p.blend(x, y, colour, 0.4 + 0.4 * Math.sqrt(1 - d / edge));
  });
}

function crack(p: Painter, r: Rendering, rng: Rng): void {
  const s = r.size;
  const width = Math.max(1.5, s * 0.009);
  const colour: Rgb = [12, 10, 10];
  const branch = (x: number, y: number, angle: number, steps: number, depth: number): void => {
    const points: [number, number][] = [[x, y]];
    for (let i = 0; i < steps; i++) {
      angle += rng.uniform(-0.6, 0.6);
      const step = s * rng.uniform(0.015, 0.03);
      x += Math.cos(angle) * step;
      y += Math.sin(angle) * step;
      points.push([x, y]);
      if (depth < 2 && rng.next() < 0.18)
        branch(
          x,
          y,
          angle + rng.pick([-1, 1]) * rng.uniform(0.5, 1.1),
          Math.floor(steps / 2),
          depth + 1,
        );
    }
    p.stroke(points, depth === 0 ? width : width * 0.75, colour);
  };
  const [x0, y0] = anchor(r, rng, s * 0.2);
  branch(x0, y0, rng.uniform(0, 2 * Math.PI), rng.int(8, 14), 0);
}

function missing(_p: Painter, r: Rendering, rng: Rng): void {
  const { size: s, object, background } = r;
  if (!object || !background) return;
  // A bite out of the object's edge: a disc centred near the boundary, refilled with background.
  let cx = s / 2;
  let cy = s / 2;
  for (let attempt = 0; attempt < 2000; attempt++) {
    const x = rng.int(1, s - 2);
    const y = rng.int(1, s - 2);
    const i = y * s + x;
    if (object[i] && (!object[i - 1] || !object[i + 1] || !object[i - s] || !object[i + s])) {
      cx = x;
      cy = y;
      break;
    }
  }
  const radius = s * rng.uniform(0.06, 0.1);
  for (
    let y = Math.max(0, Math.floor(cy - radius));
    y <= Math.min(s - 1, Math.ceil(cy + radius));
    y++
  ) {
    for (
      let x = Math.max(0, Math.floor(cx - radius));
      x <= Math.min(s - 1, Math.ceil(cx + radius));
      x++
    ) {
      const i = y * s + x;
      if (object[i] && Math.hypot(x - cx, y - cy) <= radius)
        for (let k = 0; k < 3; k++) r.rgb[i * 3 + k] = background[i * 3 + k];
    }
  }
}

const DEFECTS = { scratch, hole, stain, crack, missing } satisfies Record<
  DefectKind,
  (p: Painter, r: Rendering, rng: Rng) => void
>;

/** Draws one defect of the given kind onto the rendering (in place). */
export function applyDefect(r: Rendering, kind: DefectKind, rng: Rng): void {
  DEFECTS[kind](new Painter(r, r.object), r, rng);
}
