/**
 * VisA layout: <root>/split_csv/1cls.csv with columns object,split,label,image,mask
 * (label "normal" | "anomaly"; image and mask paths relative to root, mask empty if normal).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { DatasetIndex, Split } from './types.js';

/** Splits one CSV line, honouring double-quoted fields. */
function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  fields.push(field);
  return fields.map((f) => f.trim());
}

export const VISA_CSV = join('split_csv', '1cls.csv');

export async function indexVisa(root: string): Promise<DatasetIndex> {
  const file = join(root, VISA_CSV);
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new UserError(
      `${file}: cannot read the VisA split file (${error.code ?? error.message})`,
    );
  });
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = splitCsvLine(lines[0] ?? '');
  const column = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0)
      throw new UserError(`${file}:1: missing column "${name}"; got ${header.join(',')}`, {
        hint: 'expected columns object,split,label,image,mask',
      });
    return i;
  };
  const [cObject, cSplit, cLabel, cImage, cMask] = [
    'object',
    'split',
    'label',
    'image',
    'mask',
  ].map(column);
  const index: DatasetIndex = new Map();
  for (let n = 1; n < lines.length; n++) {
    const f = splitCsvLine(lines[n]);
    const [product, split, label, image, mask] = [
      f[cObject],
      f[cSplit],
      f[cLabel],
      f[cImage],
      f[cMask],
    ];
    if (split !== 'train' && split !== 'test') {
      throw new UserError(`${file}:${n + 1}: split: got "${split}", expected train or test`);
    }
    if (label !== 'normal' && label !== 'anomaly') {
      throw new UserError(`${file}:${n + 1}: label: got "${label}", expected normal or anomaly`);
    }
    if (!index.has(product)) index.set(product, { train: [], test: [] });
    const anomalous = label === 'anomaly';
    index.get(product)![split as Split].push({
      imagePath: join(root, image),
      maskPath: mask ? join(root, mask) : null,
      product,
      defect: anomalous ? 'anomaly' : 'good',
      label: anomalous ? 1 : 0,
    });
  }
  return index;
}
