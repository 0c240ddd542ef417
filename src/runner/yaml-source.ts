/**
 * A YAML file parsed into plain data plus the source position of every key and value, so a
 * problem found later in the data can be reported at `file:line:col`.
 */
import { readFileSync } from 'node:fs';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
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

/** Reads and parses `file` (as named in messages); never throws for user mistakes. */
export function loadYamlFile(file: string): YamlSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'file not found'
        : (error as Error).message;
    const issue: SpecIssue = {
      file,
      line: 0,
      col: 0,
      path: [],
      message: `cannot read spec: ${reason}`,
      severity: 'error',
    };
    return { file, value: undefined, issues: [issue], locate: () => undefined };
  }
  return parseYamlText(text, file);
}

export function parseYamlText(text: string, file: string): YamlSource {
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
  if (doc.contents) walk(doc, doc.contents as Node, [], undefined, positions, at, new Set());
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

function walk(
  doc: Document,
  node: Node,
  path: JsonPath,
  key: Position | undefined,
  out: Map<string, Located>,
  at: (offset: number) => Position,
  visiting: Set<Node>,
): void {
  const start = node.range?.[0] ?? 0;
  out.set(pathKey(path), { key, value: at(start) });
  if (isAlias(node)) {
    const target = node.resolve(doc);
    if (target && !visiting.has(target)) {
      visiting.add(target);
      walkChildren(doc, target, path, out, at, visiting);
      visiting.delete(target);
    }
    return;
  }
  walkChildren(doc, node, path, out, at, visiting);
}

function walkChildren(
  doc: Document,
  node: Node,
  path: JsonPath,
  out: Map<string, Located>,
  at: (offset: number) => Position,
  visiting: Set<Node>,
): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const k = pair.key as Node | null;
      const name = isScalar(k) ? String(k.value) : String(k);
      const keyPos = k?.range ? at(k.range[0]) : undefined;
      const child = [...path, name];
      if (pair.value) walk(doc, pair.value as Node, child, keyPos, out, at, visiting);
      else if (keyPos) out.set(pathKey(child), { key: keyPos, value: keyPos });
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      if (item) walk(doc, item as Node, [...path, i], undefined, out, at, visiting);
    });
  }
}
