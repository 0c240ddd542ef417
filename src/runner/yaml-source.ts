/**
 * A YAML file parsed into plain data plus the source position of every key and value, so a
 * problem found later in the data can be reported at `file:line:col`.
 *
 * The work is bounded whatever the file holds (limits.ts): only regular files up to
 * MAX_SPEC_BYTES are read, strictly as UTF-8; collections nest at most MAX_YAML_DEPTH deep
 * (checked on the text first: the YAML parser recurses on flow collections and runs out of
 * stack or memory a few thousand levels down); aliases may expand to at most MAX_YAML_NODES
 * nodes, counted while walking, before any value is built.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import { MAX_SPEC_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES } from './limits.js';
import type { JsonPath, SpecIssue } from './spec-error.js';

export interface Position {
  file: string;
  line: number;
  col: number;
}

/** Where a path was written: its key (for map entries) and its value. */
export interface Located {
  key?: Position;
  value: Position;
}

export interface YamlSource {
  file: string;
  /** `undefined` when the file could not be read or parsed at all. */
  value: unknown;
  issues: SpecIssue[];
  locate(path: JsonPath): Located | undefined;
}

export const pathKey = (path: JsonPath): string => JSON.stringify(path);

/** Why a file cannot be read as a spec: not found, not a regular file, too large. */
export class SpecReadError extends Error {}

/**
 * The bytes of a spec file: a regular file of at most `maxBytes` (never more is read, so
 * /dev/zero or a FIFO cannot make it grow).
 */
export function readSpecBytes(file: string, maxBytes = MAX_SPEC_BYTES): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SpecReadError(
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EISDIR'
          ? 'is a directory, not a file'
          : (error as Error).message,
    );
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile())
      throw new SpecReadError(
        'not a regular file (a device, FIFO or socket); a spec is a YAML file',
      );
    if (info.size > maxBytes) throw new SpecReadError(tooLarge(info.size, maxBytes));
    // /proc files report size 0: read at most one byte beyond the limit, whatever stat says.
    const buffer = Buffer.alloc(Math.min(maxBytes + 1, Math.max(info.size, 64 * 1024)));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > maxBytes) throw new SpecReadError(tooLarge(length, maxBytes, true));
        break;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) throw new SpecReadError(tooLarge(length, maxBytes, true));
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

function tooLarge(size: number, max: number, atLeast = false): string {
  return `${atLeast ? 'more than ' : ''}${size.toLocaleString('en-US')} bytes; a spec file is at most ${max.toLocaleString('en-US')} bytes`;
}

/** Offset of the first byte that is not part of a valid UTF-8 sequence, or -1. */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    const n =
      b < 0x80
        ? 1
        : b >= 0xc2 && b <= 0xdf
          ? 2
          : b >= 0xe0 && b <= 0xef
            ? 3
            : b >= 0xf0 && b <= 0xf4
              ? 4
              : 0;
    if (n === 0 || i + n > bytes.length) return i;
    for (let k = 1; k < n; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    // Overlong 3/4-byte forms, UTF-16 surrogates and code points beyond U+10FFFF.
    const b1 = bytes[i + 1];
    if (
      (b === 0xe0 && b1 < 0xa0) ||
      (b === 0xed && b1 > 0x9f) ||
      (b === 0xf0 && b1 < 0x90) ||
      (b === 0xf4 && b1 > 0x8f)
    )
      return i;
    i += n;
  }
  return -1;
}

/** 1-based line and column of a byte offset. */
function bytePosition(bytes: Uint8Array, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++)
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  return { line, col: offset - lineStart + 1 };
}

function fileIssue(file: string, message: string, line = 0, col = 0): SpecIssue {
  return { file, line, col, path: [], message, severity: 'error' };
}

/** Reads and parses `file` (as named in messages); never throws for user mistakes. */
export function loadYamlFile(file: string): YamlSource {
  let bytes: Buffer;
  try {
    bytes = readSpecBytes(file);
  } catch (error) {
    if (!(error instanceof SpecReadError)) throw error;
    const issue = fileIssue(file, `cannot read spec: ${error.message}`);
    return { file, value: undefined, issues: [issue], locate: () => undefined };
  }
  const bad = invalidUtf8Offset(bytes);
  if (bad >= 0) {
    const { line, col } = bytePosition(bytes, bad);
    const hex = `0x${bytes[bad].toString(16).toUpperCase().padStart(2, '0')}`;
    const issue = fileIssue(
      file,
      `not UTF-8: byte ${hex} cannot start or continue a UTF-8 character (Latin-1 or another legacy encoding?); save the file as UTF-8`,
      line,
      col,
    );
    return { file, value: undefined, issues: [issue], locate: () => undefined };
  }
  return parseYamlText(bytes.toString('utf8'), file);
}

/**
 * Offset where `[`/`{` nesting first exceeds `max`, counted on the raw text (brackets inside
 * quoted strings count too: erring on the safe side costs nothing for a real spec).
 */
export function flowNestingBeyond(text: string, max: number): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return -1;
}

export function parseYamlText(text: string, file: string): YamlSource {
  if (text.length > MAX_SPEC_BYTES) {
    const issue = fileIssue(file, `cannot read spec: ${tooLarge(text.length, MAX_SPEC_BYTES)}`);
    return { file, value: undefined, issues: [issue], locate: () => undefined };
  }
  const deep = flowNestingBeyond(text, MAX_YAML_DEPTH);
  if (deep >= 0) {
    const before = text.slice(0, deep);
    const line = before.split('\n').length;
    const issue = fileIssue(
      file,
      `YAML nests deeper than ${MAX_YAML_DEPTH} levels of [ ] / { } here; a spec needs a handful`,
      line,
      deep - before.lastIndexOf('\n'),
    );
    return { file, value: undefined, issues: [issue], locate: () => undefined };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    keepSourceTokens: false,
  });
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  const issues: SpecIssue[] = [];
  for (const [severity, list] of [
    ['error', doc.errors],
    ['warning', doc.warnings],
  ] as const) {
    for (const e of list) {
      const { line, col } = at(e.pos[0]);
      issues.push({
        file,
        line,
        col,
        path: [],
        message: `YAML ${e.code}: ${firstLine(e.message)}`,
        severity,
      });
    }
  }
  const positions = new Map<string, Located>();
  if (doc.contents && !issues.some((i) => i.severity === 'error')) {
    const budget: WalkBudget = { nodes: 0 };
    try {
      walk(doc, doc.contents as Node, [], undefined, positions, at, new Set(), budget);
    } catch (error) {
      if (!(error instanceof WalkLimit)) throw error;
      issues.push({ ...error.at, path: error.path, message: error.message, severity: 'error' });
    }
  }
  let value: unknown;
  if (!issues.some((i) => i.severity === 'error')) {
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (error) {
      issues.push({
        file,
        line: 1,
        col: 1,
        path: [],
        message: `YAML: ${(error as Error).message}`,
        severity: 'error',
      });
    }
  }
  return { file, value, issues, locate: (path) => positions.get(pathKey(path)) };
}

function firstLine(message: string): string {
  return message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

interface WalkBudget {
  nodes: number;
}

/** The document is too large or too deep once aliases are expanded. */
class WalkLimit extends Error {
  constructor(
    message: string,
    readonly at: Position,
    readonly path: JsonPath,
  ) {
    super(message);
  }
}

function walk(
  doc: Document,
  node: Node,
  path: JsonPath,
  key: Position | undefined,
  out: Map<string, Located>,
  at: (offset: number) => Position,
  visiting: Set<Node>,
  budget: WalkBudget,
): void {
  const start = node.range?.[0] ?? 0;
  if (++budget.nodes > MAX_YAML_NODES)
    throw new WalkLimit(
      `YAML expands to more than ${MAX_YAML_NODES.toLocaleString('en-US')} values (aliases counted once per use; an alias bomb?); write the values out or use fewer aliases`,
      at(start),
      path,
    );
  if (path.length > MAX_YAML_DEPTH)
    throw new WalkLimit(
      `YAML nests deeper than ${MAX_YAML_DEPTH} levels here; a spec needs a handful`,
      at(start),
      path.slice(0, MAX_YAML_DEPTH),
    );
  out.set(pathKey(path), { key, value: at(start) });
  if (isAlias(node)) {
    const target = node.resolve(doc);
    if (target && !visiting.has(target)) {
      visiting.add(target);
      walkChildren(doc, target, path, out, at, visiting, budget);
      visiting.delete(target);
    }
    return;
  }
  walkChildren(doc, node, path, out, at, visiting, budget);
}

function walkChildren(
  doc: Document,
  node: Node,
  path: JsonPath,
  out: Map<string, Located>,
  at: (offset: number) => Position,
  visiting: Set<Node>,
  budget: WalkBudget,
): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const k = pair.key as Node | null;
      const name = isScalar(k) ? String(k.value) : String(k);
      const keyPos = k?.range ? at(k.range[0]) : undefined;
      const child = [...path, name];
      if (pair.value) walk(doc, pair.value as Node, child, keyPos, out, at, visiting, budget);
      else if (keyPos) out.set(pathKey(child), { key: keyPos, value: keyPos });
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      if (item) walk(doc, item as Node, [...path, i], undefined, out, at, visiting, budget);
    });
  }
}
