/**
 * How values and near-misses are put into words in error messages, the same for spec
 * errors and config errors: short JSON renderings and "did you mean" suggestions.
 */

/** JSON-ish rendering of a value a user wrote, kept short. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  // JSON has no NaN or infinities (it would print null): use YAML's spellings.
  const yamlNumber = (v: number) => (Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf');
  if (typeof value === 'number' && !Number.isFinite(value)) return yamlNumber(value);
  const text =
    JSON.stringify(value, (_k, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? `\u0000${yamlNumber(v)}\u0000` : v,
    )?.replace(/"\\u0000(-?\.\w+)\\u0000"/g, '$1') ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Edit distance where swapping two neighbouring letters counts as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest candidate within a small edit distance (case-insensitive), if any. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase();
  for (const candidate of candidates) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  return bestDistance <= limit ? best : undefined;
}

/** 'unknown key "hedas"; did you mean "heads"? allowed: a, b, c' (or 'unknown key "x"; allowed: …'). */
export function unknownKeyMessage(what: string, key: string, allowed: readonly string[]): string {
  const guess = suggest(key, allowed);
  return `unknown ${what} ${JSON.stringify(key)}; ${guess ? `did you mean ${JSON.stringify(guess)}? ` : ''}allowed: ${allowed.join(', ')}`;
}

/** '; did you mean "mvtec"?' for a value close to one of `allowed` (case or a small typo), else ''. */
export function suggestValue(value: string, allowed: readonly string[]): string {
  const lower = value.toLowerCase();
  const close = allowed.find((a) => a.toLowerCase() === lower) ?? suggest(value, allowed);
  return close ? `; did you mean ${JSON.stringify(close)}?` : '';
}

/** `base.layers[3]`, `sweep.grid["eval.datasets"]`, `(root)` for the empty path. */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** "1 trial", "2 trials" (`many` for irregular plurals). */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count.toLocaleString('en-US')} ${count === 1 ? one : many}`;
}
