/**
 * TensorFlow's C++ start-up lines (absl's pre-init warning, the oneDNN notice): printed by
 * libtensorflow straight to the trial's stderr whatever TF_CPP_MIN_LOG_LEVEL says, and of no
 * use in its log. Its warnings and errors (level W/E/F) are kept. The trial's stderr goes to
 * the log file directly (a pipe through the runner would break when the runner dies), so the
 * lines are left out of the copies uploaded to MLflow instead.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const NOISE = [
  /^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$/,
  /^I\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] /,
];

export const isNativeLogNoise = (line: string): boolean => NOISE.some((re) => re.test(line));

export function withoutNativeLogNoise(text: string): string {
  return text
    .split('\n')
    .filter((line) => !isNativeLogNoise(line))
    .join('\n');
}

/** Writes `from` without the noise to `to` (which may be `from`). */
export async function copyWithoutNativeLogNoise(from: string, to: string): Promise<void> {
  const text = await readFile(from, 'utf8');
  await mkdir(dirname(to), { recursive: true });
  await writeFile(to, withoutNativeLogNoise(text));
}
