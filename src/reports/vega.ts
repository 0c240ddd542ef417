/**
 * Vega-Lite → SVG (vega's headless View, no canvas) → PNG (sharp/librsvg at 2× density).
 * Fonts are generic families so that any machine's renderer has them.
 */
import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export const FONT = 'sans-serif';

/** Shared look: legible sizes, white background, generic fonts. */
export const VL_CONFIG = {
  font: FONT,
  background: 'white',
  padding: 12,
  title: { fontSize: 15, anchor: 'start', subtitleFontSize: 12 },
  axis: { labelFontSize: 12, titleFontSize: 13, labelLimit: 240 },
  legend: { labelFontSize: 12, titleFontSize: 13, labelLimit: 320, titleLimit: 320 },
  header: { labelFontSize: 13, titleFontSize: 13 },
  view: { stroke: '#ccc' },
} as const;

export interface Rendered {
  svg: string;
  png: Buffer;
  /** SVG size in CSS pixels; the PNG is twice as large. */
  width: number;
  height: number;
}

/** PNG pixels per SVG pixel. */
export const PNG_SCALE = 2;

export async function renderVegaLite(spec: Record<string, unknown>): Promise<Rendered> {
  const full = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...spec,
    config: { ...VL_CONFIG, ...(spec.config as object | undefined) },
  };
  const compiled = compile(full as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = normalizeIds(await view.toSVG());
  view.finalize();
  const size = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  if (!size) throw new Error('vega produced an SVG without width/height');
  const png = await svgToPng(svg);
  return { svg: `${svg}\n`, png, width: Number(size[1]), height: Number(size[2]) };
}

/**
 * Vega numbers gradients and clip paths with process-wide counters, so the second figure of
 * a process would get other ids than the first: renumber them in order of appearance.
 */
export function normalizeIds(svg: string): string {
  const ids = new Map<string, string>();
  for (const m of svg.matchAll(/\bid="([A-Za-z_-]+?)(\d+)"/g))
    if (!ids.has(m[1] + m[2])) ids.set(m[1] + m[2], `${m[1]}${ids.size + 1}`);
  return svg.replace(
    /(\bid="|url\(#|href="#)([A-Za-z_-]+?\d+)(?=[")])/g,
    (all, lead: string, id: string) => (ids.has(id) ? lead + ids.get(id)! : all),
  );
}

export async function svgToPng(svg: string): Promise<Buffer> {
  // 72 dpi is librsvg's 1:1; compressionLevel and no metadata keep the bytes reproducible.
  // A 256-colour palette (deterministic quantisation) makes figures with photos ~5× smaller.
  return sharp(Buffer.from(svg), { density: 72 * PNG_SCALE })
    .png({ compressionLevel: 9, palette: true })
    .toBuffer();
}
