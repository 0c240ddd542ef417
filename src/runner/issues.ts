/** Collects spec issues, placing each at the key or value it is about (or its nearest written ancestor). */
import type { JsonPath, SpecIssue } from './spec-error.js';
import { pathKey, type Located, type Position } from './yaml-source.js';

export class IssueSink {
  readonly issues: SpecIssue[] = [];
  /** Paths already reported by a check that says it best; later errors there are dropped. */
  private readonly settled = new Set<string>();

  constructor(
    private readonly locate: (path: JsonPath) => Located | undefined,
    private readonly rootFile: string,
  ) {}

  /** Position of the key (or value) at `path`; an unwritten path falls back to its closest written ancestor's key. */
  position(path: JsonPath, at: 'key' | 'value'): Position {
    for (let n = path.length; n >= 0; n--) {
      const found = this.locate(path.slice(0, n));
      if (found)
        return n === path.length && at === 'value' ? found.value : (found.key ?? found.value);
    }
    return { file: this.rootFile, line: 0, col: 0 };
  }

  /** `file:line:col` of a path, for messages that refer to another place. */
  where(path: JsonPath): string {
    const p = this.position(path, 'key');
    return `${p.file}:${p.line}:${p.col}`;
  }

  error(path: JsonPath, at: 'key' | 'value', message: string): void {
    if (this.settled.has(pathKey(path))) return;
    this.issues.push({ ...this.position(path, at), path, message, severity: 'error' });
  }

  /** Reports an error at `path` and drops any later one there (e.g. the schema's, less clear). */
  settle(path: JsonPath, at: 'key' | 'value', message: string): void {
    this.error(path, at, message);
    this.settled.add(pathKey(path));
  }

  warning(path: JsonPath, at: 'key' | 'value', message: string): void {
    this.issues.push({ ...this.position(path, at), path, message, severity: 'warning' });
  }

  get errorCount(): number {
    return this.issues.filter((i) => i.severity === 'error').length;
  }
}
