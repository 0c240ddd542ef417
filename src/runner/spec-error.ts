/**
 * Spec problems, each with the place it was written: `file:line:col json-path message`.
 * Loading collects every problem it can find and throws them together as one SpecError.
 */
import { UserError } from '../errors.js';
import { formatPath } from '../io/wording.js';

export { formatPath };

/** A JSON path as segments: object keys and array indices. */
export type JsonPath = readonly (string | number)[];

export interface SpecIssue {
  /** File the offending key or value was written in (for inherited values, the base file). */
  file: string;
  /** 1-based line and column; 0 when the issue has no position (e.g. an empty file). */
  line: number;
  col: number;
  path: JsonPath;
  message: string;
  severity: 'error' | 'warning';
}

export function formatIssue(issue: SpecIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  const tag = issue.severity === 'warning' ? 'warning: ' : '';
  return `${where} ${formatPath(issue.path)} ${tag}${issue.message}`;
}

/** Issues in file order, errors before warnings at the same place; exact duplicates dropped. */
export function sortIssues(issues: readonly SpecIssue[]): SpecIssue[] {
  const seen = new Set<string>();
  return [...issues]
    .sort(
      (a, b) =>
        a.file.localeCompare(b.file) ||
        a.line - b.line ||
        a.col - b.col ||
        (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1),
    )
    .filter((i) => {
      const key = formatIssue(i);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/** Every error found in a spec (and the files it extends); the CLI exits with code 2. */
export class SpecError extends UserError {
  override name = 'SpecError';
  readonly issues: readonly SpecIssue[];

  constructor(issues: readonly SpecIssue[]) {
    const sorted = sortIssues(issues);
    const errors = sorted.filter((i) => i.severity === 'error');
    const head = `invalid experiment spec: ${errors.length} error${errors.length === 1 ? '' : 's'}`;
    super([head, ...sorted.map(formatIssue)].join('\n'), {
      exitCode: 2,
      hint: 'fix every line above; docs/spec.md describes each field',
    });
    this.issues = sorted;
  }
}
