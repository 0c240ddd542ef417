/**
 * TensorFlow's C++ start-up lines (absl's pre-init warning, the oneDNN notice): printed by
 * libtensorflow straight to stderr whatever TF_CPP_MIN_LOG_LEVEL says, and of no use in a
 * trial's log. Its warnings and errors (level W/E/F after the first) are kept.
 */
const NOISE = [
  /^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$/,
  /^I\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] /,
];

export const isNativeLogNoise = (line: string): boolean => NOISE.some((re) => re.test(line));

/** An execa line transform dropping the noise. */
export function* dropNativeLogNoise(line: unknown): Generator<unknown> {
  if (typeof line !== 'string' || !isNativeLogNoise(line)) yield line;
}
