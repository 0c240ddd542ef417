/**
 * A method's config. Its JSON Schema, `schemas/methods/<method>.schema.json`, is the single
 * source of the fields, their types (src/model/methods/<method>/config.generated.ts is
 * generated from it) and their defaults (filled in by ajv); the method adds only the checks
 * across fields, made against the shapes of the backbone it runs on. The spec loader uses the
 * same schema and the same checks, so a config is described, defaulted and checked in one place.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../../errors.js';
import { SchemaSet, type JsonPath, type Schema } from '../../io/json-schema.js';
import { formatPath, show } from '../../io/wording.js';
import { BACKBONE_ALIASES, KNOWN_BACKBONES, type BackboneShape } from '../clip/presets.js';
import type { FeatureRequest, MethodFactory } from './method.js';

/** The backbone a config is checked against, and how messages name it. */
export interface BackboneRef {
  shape: BackboneShape;
  /** e.g. "ViT-L-14-336" or "the checkpoint at /path/to/clip". */
  name: string;
}

/** One problem of a config: the field (a path inside the config) and "got …, expected …". */
export interface ConfigIssue {
  path: JsonPath;
  message: string;
}

/** What the registry (src/model/methods/index.ts) knows about a method. */
export interface MethodDefinition<Cfg extends object = object> {
  readonly name: string;
  /** schemas/methods/<name>.schema.json. */
  readonly schema: Schema;
  /** Checks across fields (and against the backbone) that JSON Schema cannot make. */
  check(config: Cfg, backbone: BackboneRef): ConfigIssue[];
  /**
   * The forms of frozen features the config asks for beyond layers and size (FeatureRequest's
   * `tokens` and `global`; absent: raw tokens, CLIP's image embedding). They enter the feature
   * key, so methods that need different features never share them.
   */
  features?(config: Cfg): Pick<FeatureRequest, 'tokens' | 'global'>;
  /** The factory, imported on demand (it pulls in tfjs; spec loading must not). */
  load(): Promise<MethodFactory<Cfg>>;
}

/** A config with bad values: every problem, each naming its field. */
export class ConfigError extends UserError {
  override name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];
  /** The first problem's field, e.g. `templates[0]`. */
  readonly field: string;

  constructor(issues: readonly ConfigIssue[], source = 'config') {
    super(`${source}: ${issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ')}`);
    this.issues = issues;
    this.field = formatPath(issues[0]?.path ?? []);
  }
}

/** The JSON Schema of a method, from the package's schemas/methods/ folder. */
export function readMethodSchema(method: string): Schema {
  // src/model/methods/ and dist/model/methods/ are both three levels below the package root.
  const url = new URL(`../../../schemas/methods/${method}.schema.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as Schema;
}

const schemas = new SchemaSet({ useDefaults: true });
const defaultsCache = new WeakMap<MethodDefinition, Readonly<Record<string, unknown>>>();

function idOf(def: MethodDefinition): string {
  return schemas.add(def.schema);
}

/** Every field's default, from the schema (deep-frozen). */
export function methodDefaults(def: MethodDefinition): Readonly<Record<string, unknown>> {
  let defaults = defaultsCache.get(def);
  if (!defaults) {
    const value: Record<string, unknown> = {};
    schemas.validate(`${idOf(def)}#`, value);
    defaults = deepFreeze(value);
    defaultsCache.set(def, defaults);
  }
  return defaults;
}

/** Fields marked `x-eval-only` in the schema: they change evaluation only, not training. */
export function evalOnlyFields(def: MethodDefinition): string[] {
  const properties = (def.schema.properties ?? {}) as Record<string, Schema>;
  return Object.keys(properties).filter((k) => properties[k]['x-eval-only'] === true);
}

/**
 * Fields marked `x-post-forward` in the schema: they change only what happens after the
 * method's test-time forward (its `readout` and `postprocess`), so trials differing only in
 * them are evaluated from one forward pass (an evaluation group). Each is also eval-only.
 */
export function postForwardFields(def: MethodDefinition): string[] {
  const properties = (def.schema.properties ?? {}) as Record<string, Schema>;
  return Object.keys(properties).filter((k) => properties[k]['x-post-forward'] === true);
}

/**
 * `config` with `settings` in place: the config of a post-forward variant. A field that is not
 * post-forward, or a value the schema refuses, is a ConfigError naming it.
 */
export function applyPostForward<Cfg extends object>(
  def: MethodDefinition<Cfg>,
  config: Cfg,
  settings: Readonly<Record<string, unknown>>,
  source = `${def.name} post-forward settings`,
): Cfg {
  const allowed = postForwardFields(def as MethodDefinition);
  const foreign = Object.keys(settings).filter((k) => !allowed.includes(k));
  if (foreign.length > 0)
    throw new ConfigError(
      foreign.map((k) => ({
        path: [k],
        message: `not a post-forward field of ${def.name} (those are: ${allowed.join(', ') || 'none'}); it changes the forward pass, so a variant in it needs its own evaluation`,
      })),
      source,
    );
  const merged = { ...structuredClone(config), ...structuredClone(settings) };
  const problems = schemaIssues(def as MethodDefinition, merged);
  if (problems.length > 0) throw new ConfigError(problems, source);
  return deepFreeze(merged) as Cfg;
}

/** Schema problems of a (partial) config, without filling defaults into it. */
export function schemaIssues(def: MethodDefinition, input: unknown): ConfigIssue[] {
  return schemas.validate(`${idOf(def)}#`, structuredClone(input)).map((p) => ({
    path: p.path,
    message: p.message,
  }));
}

/**
 * Validates `input` against the method's schema, fills its defaults and makes the method's
 * checks across fields against `backbone` (default: the known architecture the config names).
 * Throws one ConfigError with every problem; returns the frozen, complete config.
 */
export function resolveMethodConfig<Cfg extends object>(
  def: MethodDefinition<Cfg>,
  input: unknown = {},
  options: { backbone?: BackboneRef; source?: string } = {},
): Cfg {
  const source = options.source ?? `${def.name} config`;
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new ConfigError(
      [{ path: [], message: `got ${show(input)}, expected a map of ${def.name} settings` }],
      source,
    );
  const config = Object.fromEntries(
    Object.entries(structuredClone(input)).filter(([, v]) => v !== undefined),
  );
  const problems = schemas.validate(`${idOf(def as MethodDefinition)}#`, config);
  if (problems.length > 0) throw new ConfigError(problems, source);
  const backbone = options.backbone ?? knownBackbone(config.backbone);
  if (!backbone) {
    const names = [...Object.keys(KNOWN_BACKBONES), ...Object.keys(BACKBONE_ALIASES)];
    throw new ConfigError(
      [
        {
          path: ['backbone'],
          message: `got ${show(config.backbone)}, expected one of ${names.join(', ')} (or build the method on a loaded CLIP)`,
        },
      ],
      source,
    );
  }
  const issues = def.check(config as Cfg, backbone);
  if (issues.length > 0) throw new ConfigError(issues, source);
  return deepFreeze(config) as Cfg;
}

function knownBackbone(name: unknown): BackboneRef | undefined {
  if (typeof name !== 'string') return undefined;
  const known = name in KNOWN_BACKBONES ? name : BACKBONE_ALIASES[name];
  return known ? { shape: KNOWN_BACKBONES[known], name: known } : undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

// Checks shared by methods on CLIP patch features.

/** `layers` within the backbone's vision depth. */
export function checkLayers(layers: readonly number[], backbone: BackboneRef): ConfigIssue[] {
  const depth = backbone.shape.visionLayers;
  const beyond = layers.filter((l) => l > depth);
  if (beyond.length === 0) return [];
  return [
    {
      path: ['layers'],
      message: `got layers ${show(layers)}, expected 1-based vision blocks in 1..${depth}: ${backbone.name} has ${depth} vision blocks (${beyond.join(', ')} beyond it)`,
    },
  ];
}

/** `image_size` a multiple of the backbone's patch size. */
export function checkImageSize(size: number, backbone: BackboneRef): ConfigIssue[] {
  const patch = backbone.shape.patchSize;
  if (size % patch === 0) return [];
  const lo = size - (size % patch);
  const nearby = [lo, lo + patch].filter((s) => s > 0).join(' or ');
  return [
    {
      path: ['image_size'],
      message: `got image_size ${size}, expected a multiple of the patch size ${patch} of ${backbone.name} (e.g. ${nearby})`,
    },
  ];
}

/** Attention `heads` (at `path`) dividing the vision width. */
export function checkHeads(heads: number, backbone: BackboneRef, path: JsonPath): ConfigIssue[] {
  const width = backbone.shape.visionWidth;
  if (width % heads === 0) return [];
  const divisors = Array.from({ length: width }, (_, i) => i + 1).filter(
    (d) => width % d === 0 && d <= 64,
  );
  return [
    {
      path,
      message: `got heads ${heads}, expected a divisor of the vision width ${width} of ${backbone.name} (e.g. ${divisors.join(', ')})`,
    },
  ];
}
