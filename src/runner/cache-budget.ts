/**
 * The frozen-feature cache's disk budget: `--feature-cache-gb`, else $VCP_EXP_FEATURE_CACHE_GB,
 * else the spec's `execution.feature_cache.budget_gb`, else derived from the free space of
 * the disk that holds the cache (defaultCacheBudget). One rule for `run`, `plan` and `train`.
 */
import { UserError } from '../errors.js';
import { defaultCacheBudget } from '../model/feature-cache.js';
import type { Spec } from './spec-types.js';

export const CACHE_BUDGET_ENV = 'VCP_EXP_FEATURE_CACHE_GB';

export interface CacheBudget {
  bytes: number;
  /** Where it comes from, for `plan`: e.g. "--feature-cache-gb", "half the free disk space". */
  source: string;
}

export async function resolveCacheBudget(options: {
  cliGb?: number;
  env?: NodeJS.ProcessEnv;
  spec?: Pick<Spec, 'execution'>;
  /** The cache directory (need not exist yet). */
  dir: string;
}): Promise<CacheBudget> {
  const gb = (value: number) => Math.round(value * 1e9);
  if (options.cliGb !== undefined) {
    if (!Number.isFinite(options.cliGb) || options.cliGb < 0)
      throw new UserError(`--feature-cache-gb: got ${options.cliGb}, expected a number of GB ≥ 0`, {
        hint: 'e.g. --feature-cache-gb 40 (0 keeps nothing)',
      });
    return { bytes: gb(options.cliGb), source: '--feature-cache-gb' };
  }
  const raw = options.env?.[CACHE_BUDGET_ENV]?.trim();
  if (raw) {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0)
      throw new UserError(`${CACHE_BUDGET_ENV}: got "${raw}", expected a number of GB ≥ 0`, {
        hint: `e.g. export ${CACHE_BUDGET_ENV}=40, or unset it to use the spec's or the default budget`,
      });
    return { bytes: gb(value), source: CACHE_BUDGET_ENV };
  }
  const fromSpec = options.spec?.execution.feature_cache.budget_gb;
  if (fromSpec !== undefined)
    return { bytes: gb(fromSpec), source: 'execution.feature_cache.budget_gb' };
  return {
    bytes: await defaultCacheBudget(options.dir),
    source: 'default: what the cache holds + half the free disk space, at most 200 GB',
  };
}
