/** Minimal .npy reader for the golden fixtures (little-endian u1 / f4, C order). */
import { readFileSync } from 'node:fs';

export interface Npy {
  shape: number[];
  data: Uint8Array | Float32Array;
}

export function readNpy(file: string): Npy {
  const bytes = readFileSync(file);
  if (bytes.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = bytes[6];
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = bytes.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const body = new Uint8Array(bytes.subarray(start)); // aligned copy
  if (descr === '|u1') return { shape, data: body };
  if (descr === '<f4') return { shape, data: new Float32Array(body.buffer) };
  throw new Error(`${file}: unsupported dtype ${descr}`);
}
