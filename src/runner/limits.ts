/**
 * Bounds on the work a spec can ask for before anything is run: a spec is untrusted input
 * (it may come from anywhere), so parsing, merging and expanding it must stay small in time
 * and memory whatever it says. Each limit is far above what a real experiment writes.
 */

/** Largest spec (or base spec) file read, in bytes. */
export const MAX_SPEC_BYTES = 1024 * 1024;

/** Deepest nesting of YAML collections (flow brackets or block levels). */
export const MAX_YAML_DEPTH = 64;

/** Most YAML nodes a document may hold once its aliases are expanded. */
export const MAX_YAML_NODES = 100_000;

/** Longest `extends` chain (the spec and its bases). */
export const MAX_EXTENDS_CHAIN = 16;

/** Trials a spec may expand to unless `execution.max_trials` raises the limit. */
export const DEFAULT_MAX_TRIALS = 10_000;
